#include "common/ops_server.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace medeval {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(30);

struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

}  // namespace

struct OpsServer::Impl {
  Options options;
  net::io_context ioc{1};
  std::optional<tcp::acceptor> acceptor;
  int port = 0;
  std::thread thread;

  class Session;
  void DoAccept();

  Reply Handle(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return {http::status::method_not_allowed, "text/plain; charset=utf-8", "use GET\n"};
    }
    if (path == "/metrics") {
      std::vector<prometheus::MetricFamily> families;
      for (const auto& c : options.collectables) {
        std::vector<prometheus::MetricFamily> more = c->Collect();
        families.insert(families.end(), std::make_move_iterator(more.begin()),
                        std::make_move_iterator(more.end()));
      }
      prometheus::TextSerializer serializer;
      return {http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
              serializer.Serialize(families)};
    }
    if (path == "/healthz" || path == "/readyz") {
      const auto& check = path == "/healthz" ? options.live : options.ready;
      absl::Status st = check ? check() : absl::OkStatus();
      if (st.ok()) return {http::status::ok, "text/plain; charset=utf-8", "ok\n"};
      return {http::status::service_unavailable, "text/plain; charset=utf-8",
              absl::StrCat(st.message(), "\n")};
    }
    return {http::status::not_found, "text/plain; charset=utf-8",
            "not found: try /metrics, /healthz or /readyz\n"};
  }
};

class OpsServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl* server) : stream_(std::move(socket)), server_(server) {}
  void Read() {
    req_ = {};
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;  // closed, timed out or garbage: drop the connection
                       self->Respond();
                     });
  }

 private:
  void Respond() {
    Reply r = server_->Handle(req_);
    res_ = {};
    res_.result(r.status);
    res_.version(req_.version());
    res_.set(http::field::content_type, r.content_type);
    res_.keep_alive(req_.keep_alive());
    res_.body() = req_.method() == http::verb::head ? "" : std::move(r.body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->Read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Impl* server_;
};

void OpsServer::Impl::DoAccept() {
  acceptor->async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), this)->Read();
    DoAccept();
  });
}

absl::StatusOr<std::unique_ptr<OpsServer>> OpsServer::Start(Options options) {
  const std::string listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen '", listen, "' must be HOST:PORT (port 0 picks a free one)"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(impl->ioc);
    auto results = resolver.resolve(host, "0", ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics-listen: cannot resolve host '", host, "'"));
    }
    addr = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(addr, static_cast<unsigned short>(port));
  impl->acceptor.emplace(impl->ioc);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " for metrics: ", ec.message()));
  }
  impl->port = impl->acceptor->local_endpoint().port();
  impl->DoAccept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<OpsServer>(new OpsServer(std::move(impl)));
}

OpsServer::OpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OpsServer::~OpsServer() {
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor->close(ec);
  });
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int OpsServer::port() const { return impl_->port; }

}  // namespace medeval
