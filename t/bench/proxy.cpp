// Benchmark: the master's relay (milter/daemon/proxy) — what relaying every
// milter connection through the master costs. A do-nothing libmilter filter
// (null-milter, shape all: every step sent and answered) is driven by
// milter-bench directly and through a Proxy running in a child process,
// alternately, in the same run; prints each run, the medians and the ratios
// (relayed / direct). Prints numbers; never passes or fails on timing.
//
//   bench-proxy [--count N] [--concurrency C] [--runs R]
//       defaults 4000 transactions, concurrency 8, 3 runs each way
//       (QUICK=1 in the environment: 1000 transactions, 1 run)
//
// Needs build/t/null-milter and build/t/milter-bench (make bench-build);
// says "skipped" and exits 0 when one is missing.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "milter/daemon/proxy.hpp"
#include "t/support/milter_client.hpp"

using namespace regmilter;

namespace {

std::string here() {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return ".";
    return std::filesystem::path(std::string(self, size_t(n))).parent_path();
}

bool wait_for(const std::string& path) {
    for (int i = 0; i < 500; ++i) {
        if (testing::unix_socket_answers(path)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// The relay, in a child process of its own (its CPU apart from the filter's).
pid_t start_relay(const std::string& path, const std::string& worker) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 256) != 0)
        _exit(1);
    daemon::Proxy proxy(fd, daemon::ProxySettings{});
    proxy.worker_up(worker);
    std::thread stopper([&] {
        int sig;
        sigwait(&set, &sig);
        proxy.stop();
    });
    proxy.run();
    stopper.join();
    _exit(0);
}

// One milter-bench run: its key=value line.
std::map<std::string, std::string> bench(const std::string& exe, const std::string& socket, pid_t pid,
                                         const std::string& extra, int count, int concurrency,
                                         const std::string& label, std::string& line) {
    std::string cmd = exe + " --socket unix:" + socket + " --pid " + std::to_string(pid) + " --count " +
                      std::to_string(count) + " --concurrency " + std::to_string(concurrency) + " --label " +
                      label + extra;
    std::map<std::string, std::string> out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    line.clear();
    while (std::fgets(buf, sizeof buf, p)) line += buf;
    pclose(p);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    size_t at = line.find(": ");
    std::string rest = at == std::string::npos ? line : line.substr(at + 2);
    size_t i = 0;
    while (i < rest.size()) {
        size_t sp = rest.find(' ', i);
        std::string kv = rest.substr(i, sp == std::string::npos ? std::string::npos : sp - i);
        if (size_t eq = kv.find('='); eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
        if (sp == std::string::npos) break;
        i = sp + 1;
    }
    return out;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const char* q = std::getenv("QUICK");
    bool quick = q && std::string(q) != "" && std::string(q) != "0";
    int count = quick ? 1000 : 4000, concurrency = 8, runs = quick ? 1 : 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (a == "--count" && v > 0 && v <= 1000000)
            count = v;
        else if (a == "--concurrency" && v > 0 && v <= 256)
            concurrency = v;
        else if (a == "--runs" && v > 0 && v <= 20)
            runs = v;
        else {
            std::fprintf(stderr, "usage: bench-proxy [--count N] [--concurrency 1..256] [--runs 1..20]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        std::fprintf(stderr, "usage: bench-proxy [--count N] [--concurrency 1..256] [--runs 1..20]\n");
        return 2;
    }
    const std::string dir = here(), null_milter = dir + "/null-milter", milter_bench = dir + "/milter-bench";
    for (const auto& exe : {null_milter, milter_bench})
        if (access(exe.c_str(), X_OK) != 0) {
            std::printf("proxy: skipped: %s missing (make bench-build)\n", exe.c_str());
            return 0;
        }
    char tmpl[] = "/tmp/regmilter-bench-proxy-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    const std::string tmp = tmpl, worker = tmp + "/null.sock", relay = tmp + "/relay.sock";

    pid_t filter = fork();
    if (filter == 0) {
        std::string conn = "unix:" + worker;
        execl(null_milter.c_str(), "null-milter", "--socket", conn.c_str(), "--shape", "all", "--max-seconds",
              "900", (char*)nullptr);
        _exit(127);
    }
    int status = 0;
    if (!wait_for(worker)) {
        std::printf("proxy: null-milter did not start\n");
        kill(filter, SIGTERM);
        waitpid(filter, nullptr, 0);
        std::filesystem::remove_all(tmp);
        return 1;
    }
    pid_t proxy = start_relay(relay, worker);
    bool ok = wait_for(relay);

    std::vector<double> tx[2], p50[2], p99[2], relay_cpu;
    std::string line;
    for (int r = 0; ok && r < runs; ++r) {
        for (int relayed = 0; relayed < 2; ++relayed) {
            auto kv = relayed ? bench(milter_bench, relay, proxy, " --cpu worker=" + std::to_string(filter),
                                      count, concurrency, "relayed", line)
                              : bench(milter_bench, worker, filter, "", count, concurrency, "direct", line);
            std::printf("proxy: run %d %s\n", r + 1, line.c_str());
            if (kv.count("tx_per_s") == 0 || kv["errors"] != "0") ok = false;
            tx[relayed].push_back(std::atof(kv["tx_per_s"].c_str()));
            p50[relayed].push_back(std::atof(kv["p50_ms"].c_str()));
            p99[relayed].push_back(std::atof(kv["p99_ms"].c_str()));
            if (relayed) relay_cpu.push_back(std::atof(kv["milter_cpu_ms_per_tx"].c_str()) * 1000);
        }
    }
    if (ok) {
        std::printf(
            "proxy: medians of %d run(s), %d transactions, concurrency %d: direct tx_per_s=%.0f p50_ms=%.3f "
            "p99_ms=%.3f; relayed tx_per_s=%.0f p50_ms=%.3f p99_ms=%.3f relay_cpu_us_per_tx=%.0f\n",
            runs, count, concurrency, median(tx[0]), median(p50[0]), median(p99[0]), median(tx[1]),
            median(p50[1]), median(p99[1]), median(relay_cpu));
        auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
        std::printf("proxy: relayed/direct tx_per_s=%.2f p50=%.2f p99=%.2f\n",
                    ratio(median(tx[1]), median(tx[0])), ratio(median(p50[1]), median(p50[0])),
                    ratio(median(p99[1]), median(p99[0])));
    } else {
        std::printf("proxy: a run failed (see above)\n");
    }
    kill(proxy, SIGTERM);
    kill(filter, SIGTERM);
    waitpid(proxy, &status, 0);
    waitpid(filter, nullptr, 0);
    std::filesystem::remove_all(tmp);
    return ok ? 0 : 1;
}
