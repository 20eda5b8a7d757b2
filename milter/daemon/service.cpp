#include "service.hpp"

#include "log.hpp"

namespace regmilter::daemon {

Service::Service(std::string config_path) : path_(std::move(config_path)) {}

void Service::watch_table(const policy::Runtime& rt) {
    const std::string& path = rt.config->bulk.table;
    if (path.empty()) {
        table_.reset();  // no table configured: nothing to watch
        return;
    }
    if (!table_ || table_->path() != path) {
        table_.emplace(path, table_settle);
    }
    if (table_) table_->adopt(rt.bulk_table, rt.bulk_stamp);  // none without a [bulk] table
}

std::vector<util::Problem> Service::start() {
    policy::Loaded l = policy::load_runtime(path_, nullptr);
    if (l.runtime) install(l.runtime);
    return std::move(l.problems);
}

void Service::install(std::shared_ptr<const policy::Runtime> rt) {
    watch_table(*rt);
    holder_.install(std::move(rt));
}

void Service::reload() noexcept {
    try {
        std::shared_ptr<const policy::Runtime> old = current();
        policy::Loaded next = policy::load_runtime(path_, old);
        if (!next.runtime) {
            for (const auto& p : next.problems) log_line(LOG_ERR, "reload refused: " + p.str());
            log_line(LOG_ERR, "reload refused: " + std::to_string(next.problems.size()) + " problem(s) in " +
                                  path_ + " or its bulk table; keeping configuration generation " +
                                  std::to_string(old ? old->generation : 0));
            return;
        }
        const config::Milter& a = old->config->milter;
        const config::Milter& b = next.runtime->config->milter;
        if (a.socket != b.socket || a.user != b.user || a.socket_mode != b.socket_mode ||
            a.pid_file != b.pid_file)
            log_line(LOG_WARNING,
                     "reload: [milter] socket, socket_mode, user and pid_file take effect at restart");
        if (!(old->config->stats.listen == next.runtime->config->stats.listen))
            log_line(LOG_WARNING, "reload: [stats] listen takes effect at restart");
        install(next.runtime);
        state_.configure(*next.runtime->config);
        if (a.syslog_facility != b.syslog_facility) {
            log_line(LOG_INFO, std::string("reload: syslog facility ") + util::name_of(b.syslog_facility) +
                                   " from the next line on");
            log_facility(b.syslog_facility);
        }
        const auto& rt = *next.runtime;
        log_line(LOG_INFO, "reloaded " + path_ + ": configuration generation " +
                               std::to_string(rt.generation) + ", bulk table " +
                               (rt.bulk_table ? std::to_string(rt.bulk_table->size()) + " entries" : "none"));
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("reload failed: ") + e.what() + "; old configuration kept");
    }
}

void Service::poll_table(std::chrono::steady_clock::time_point now) noexcept {
    try {
        std::shared_ptr<const policy::Runtime> rt = current();
        if (!rt || !table_) return;
        bulk::TableFile::Refresh r = table_->poll(now);
        using What = bulk::TableFile::Refresh::What;
        if (r.what == What::loaded) {
            auto next = policy::with_table(*rt, r.table, table_->stamp());
            holder_.install(next);
            log_line(LOG_INFO, "bulk table " + table_->path() +
                                   " changed: " + std::to_string(r.table->size()) +
                                   " entries, configuration generation " + std::to_string(next->generation));
        } else if (r.what == What::refused) {
            for (const auto& p : r.problems) log_line(LOG_ERR, "bulk table reload refused: " + p.str());
            log_line(LOG_ERR, "bulk table reload refused: keeping the table of " +
                                  std::to_string(rt->bulk_table ? rt->bulk_table->size() : 0) + " entries");
        }
    } catch (const std::exception& e) {
        log_line(LOG_ERR, std::string("bulk table check failed: ") + e.what() + "; old table kept");
    }
}

policy::Environment Service::environment() {
    policy::Environment env;
    env.runtime = [this] { return current(); };
    env.draining = [this] { return draining(); };
    env.store = [this] { return state_.current(); };
    env.notice = [](policy::LogLevel level, const std::string& line) {
        log_line(level == policy::LogLevel::info ? LOG_INFO : LOG_WARNING, line);
    };
    env.observer = observer_;
    env.stage_deadline = stage_deadline_;
    return env;
}

}  // namespace regmilter::daemon
