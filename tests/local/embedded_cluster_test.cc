// `medeval run`'s embedded coordinator takes calls only with the token made
// for that run: another local process cannot inject answers.
#include "local/embedded_cluster.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_util.h"
#include "gtest/gtest.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

grpc::Status Hello(const std::string& target, const ClientSecurity& security,
                   v1::CoordinatorMessage* first) {
  auto channel = MakeChannel(target, security);
  auto stub = v1::Coordinator::NewStub(*channel);
  grpc::ClientContext ctx;
  AddAuth(&ctx, security);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  auto rw = stub->Work(&ctx);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_name("intruder");
  hello.mutable_hello()->set_model("m");
  hello.mutable_hello()->set_max_inflight(1);
  rw->Write(hello);
  if (rw->Read(first)) {
    ctx.TryCancel();
    return grpc::Status::OK;
  }
  return rw->Finish();
}

TEST(EmbeddedClusterTest, OnlyItsOwnWorkersAndClientGetIn) {
  testing::TempDir tmp;
  EmbeddedCluster::Options o;
  o.state_dir = tmp / "state";
  auto cluster = EmbeddedCluster::Start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const ClientSecurity own = (*cluster)->client_security();
  EXPECT_GE(own.token.size(), 32u);

  v1::CoordinatorMessage m;
  grpc::Status st = Hello((*cluster)->target(), ClientSecurity{}, &m);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  ClientSecurity guess;
  guess.token = "guess";
  st = Hello((*cluster)->target(), guess, &m);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  st = Hello((*cluster)->target(), own, &m);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(m.has_welcome());

  // Each run makes its own.
  testing::TempDir tmp2;
  o.state_dir = tmp2 / "state";
  auto other = EmbeddedCluster::Start(o);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*other)->client_security().token, own.token);
}

}  // namespace
}  // namespace medeval
