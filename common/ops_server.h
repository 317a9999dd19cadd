// The operations endpoint of a medeval process (coordinator or worker), on
// its own HTTP port (--metrics-listen) so probes and scrapes never touch the
// gRPC port or its TLS:
//
//   GET /metrics  Prometheus text format (collected on each scrape)
//   GET /healthz  200 while the process works, 503 with why otherwise
//   GET /readyz   200 when it can take work, 503 with why otherwise
//
// Thread-safety: Start and the destructor from one thread. Collectables and
// the health callbacks run on the server's own thread, one request at a
// time: they must be thread-safe with respect to the rest of the process.
#ifndef MEDEVAL_COMMON_OPS_SERVER_H_
#define MEDEVAL_COMMON_OPS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace prometheus {
class Collectable;
}

namespace medeval {

class OpsServer {
 public:
  struct Options {
    std::string listen;  // HOST:PORT; port 0 picks a free one
    // Exposed together on /metrics (a prometheus::Registry is one).
    std::vector<std::shared_ptr<const prometheus::Collectable>> collectables;
    std::function<absl::Status()> live;   // null: always live
    std::function<absl::Status()> ready;  // null: always ready
  };

  // kInvalidArgument for a malformed address, kUnavailable if it is taken.
  static absl::StatusOr<std::unique_ptr<OpsServer>> Start(Options options);
  ~OpsServer();  // stops
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  int port() const;

 private:
  struct Impl;
  explicit OpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_OPS_SERVER_H_
