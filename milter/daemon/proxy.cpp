#include "proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "channel.hpp"
#include "log.hpp"
#include "milter/packet.hpp"
#include "util/lock_guarded.hpp"
#include "util/text.hpp"

namespace regmilter::daemon {

namespace {

namespace m = regmilter::milter;
using Clock = std::chrono::steady_clock;

// epoll tags: the listening socket, the wakeup eventfd, then two per session.
constexpr uint64_t listen_tag = 0, wake_tag = 1;
constexpr uint64_t hold_tag = ~uint64_t(0);  // no session's: their ids stay far below 2^63
enum Side : uint64_t { mta_side = 0, worker_side = 1 };
uint64_t tag_of(SessionId id, Side side) {
    return id << 1 | side;
}

// How often sessions waiting for a worker try its socket again, and how long
// accepting pauses when the process is out of descriptors.
constexpr auto retry_interval = std::chrono::milliseconds(20);
constexpr auto accept_pause = std::chrono::milliseconds(100);
constexpr size_t read_chunk = 64 * 1024;

std::string errno_text(int e) {
    return std::strerror(e);
}

// "192.0.2.1:25", "[2001:db8::1]:25" or, for a unix socket, the peer's
// process and user.
std::string peer_of(int fd, const sockaddr_storage& sa) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (sa.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (sa.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (sa.ss_family == AF_UNIX && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        return "unix:pid=" + std::to_string(cred.pid) + ",uid=" + std::to_string(cred.uid);
    return "unix";
}

// Bytes waiting to be written to one socket.
class OutBuffer {
public:
    size_t size() const { return data_.size() - pos_; }
    bool empty() const { return size() == 0; }
    void append(std::string_view bytes) {
        if (pos_ > 0 && pos_ == data_.size()) {
            data_.clear();
            pos_ = 0;
        }
        data_.append(bytes);
    }
    void clear() {
        data_.clear();
        pos_ = 0;
    }
    // Writes what the socket takes. 0 when done or blocked (EAGAIN), else errno.
    int flush(int fd) {
        while (!empty()) {
            ssize_t n = ::send(fd, data_.data() + pos_, size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return errno;
            }
            pos_ += size_t(n);
        }
        if (pos_ > 0 && (pos_ == data_.size() || pos_ > 65536)) {
            data_.erase(0, pos_);
            pos_ = 0;
        }
        return 0;
    }

private:
    std::string data_;
    size_t pos_ = 0;
};

// An MTA packet that passed check_command(), not yet handed to the worker.
struct Pending {
    m::Frame frame;
    bool asked = false;   // the hold hook has seen it
    bool awaits = false;  // the MTA waits for the worker's answer to it
    bool early = false;   // an RCPT TO the master answered (answer_early)
};

struct Session {
    SessionId id = 0;
    std::string peer;
    std::string queue_id;              // the MTA's "i" macro, once sent
    std::string client_address, helo;  // from the connect and HELO packets, for the hold hook
    int mta = -1, worker = -1;
    uint32_t mta_events = 0, worker_events = 0;  // what epoll watches now
    m::FrameParser from_mta, from_worker{1024 * 1024 - 1};
    m::Conversation conv;
    std::deque<Pending> pending;
    size_t pending_bytes = 0;
    OutBuffer to_worker, to_mta;
    bool orphan = false;          // the master answers from now on
    bool quit = false;            // the MTA sent QUIT: the worker may close
    bool held = false;            // the hold hook holds a MAIL or RCPT
    bool closing = false;         // refused: only the answers owed still go out
    bool connect_macros = false;  // a connect-stage 'D' went since the last connect
    bool dropped_own_macro = false;
    Clock::time_point deadline = Clock::time_point::max();
    // RCPT TO answered here (the worker's "rcpt" hint, read_hold_channel):
    // MAIL commands libmilter took (its MAIL FROM callbacks), the one whose
    // recipients the worker said all continue, and how many of the oldest
    // replies conv.awaited() lists the MTA has already (answer_early gives
    // one only when every reply awaited before it is such a one, so they
    // are always the first ones).
    uint64_t mails_taken = 0;
    uint64_t rcpt_continue = 0;
    size_t answered_early = 0;

    bool waiting_for_worker() const { return worker < 0 && !orphan && !closing; }
};

struct Requests {
    bool stop = false;
    std::optional<std::string> worker;  // "" = down
    bool drain = false;
    bool take_backlog = false;
    bool close_idle = false;
    std::vector<int> hold_channels;  // the last one is kept, the others closed
    std::optional<std::pair<policy::OnInternalError, std::string>> answers;
};

}  // namespace

struct Proxy::Impl {
    Impl(int listen_fd, ProxySettings s) : listen(listen_fd), settings(std::move(s)) {}

    int listen;
    ProxySettings settings;
    int epoll = -1, wake = -1;
    util::LockGuarded<Requests> requests;

    // Counters, read from any thread.
    std::atomic<uint64_t> n_open{0}, n_accepted{0}, n_refused{0}, n_orphaned{0}, n_master{0}, n_worker{0},
        n_early{0};
    std::atomic<bool> listen_released{false};

    // Everything below: the relay's thread only.
    std::unordered_map<SessionId, std::unique_ptr<Session>> sessions;
    std::multimap<Clock::time_point, SessionId> timers;  // stale entries are skipped
    std::set<SessionId> waiting;                         // for a worker connection
    SessionId next_id = 1;
    std::string worker_path;
    bool draining = false, closing_idle = false, stopping = false;
    bool accepting = true;
    Clock::time_point accept_again = Clock::time_point::max();
    Clock::time_point next_retry = Clock::time_point::max();
    bool emfile_logged = false;
    int hold_fd = -1;  // hold_channel()'s

    void wakeup() {
        uint64_t one = 1;
        ssize_t ignored = ::write(wake, &one, sizeof one);
        (void)ignored;
    }

    // --- logging -----------------------------------------------------------

    std::string who(const Session& s) const {
        return "id=" +
               (s.queue_id.empty() ? std::string("NOQUEUE")
                                   : util::sanitize(s.queue_id, util::TextUse::log_value)) +
               " session=" + std::to_string(s.id) + " peer=" + s.peer;
    }

    std::string answer_name() const {
        return settings.on_internal_error == policy::OnInternalError::tempfail
                   ? std::string("tempfail ") + policy::replies::internal_error.code + " " +
                         policy::replies::internal_error.xcode
                   : std::string("continue (tempfail from end of headers on)");
    }

    // --- epoll -------------------------------------------------------------

    void watch(int fd, uint64_t tag, uint32_t& current, uint32_t wanted) {
        if (fd < 0 || wanted == current) return;
        epoll_event ev{};
        ev.events = wanted;
        ev.data.u64 = tag;
        epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &ev);
        current = wanted;
    }

    bool over_limit(const Session& s) const {
        return s.to_mta.size() >= settings.buffer_limit ||
               (!s.orphan && s.pending_bytes + s.to_worker.size() >= settings.buffer_limit);
    }

    void update(Session& s) {
        uint32_t mta = 0;
        if (!s.closing && !over_limit(s)) mta |= EPOLLIN;
        if (!s.to_mta.empty()) mta |= EPOLLOUT;
        watch(s.mta, tag_of(s.id, mta_side), s.mta_events, mta);
        uint32_t worker = 0;
        if (s.to_mta.size() < settings.buffer_limit) worker |= EPOLLIN;
        if (!s.to_worker.empty()) worker |= EPOLLOUT;
        watch(s.worker, tag_of(s.id, worker_side), s.worker_events, worker);
    }

    void set_deadline(Session& s, Clock::time_point when) {
        s.deadline = when;
        if (when != Clock::time_point::max()) timers.emplace(when, s.id);
    }

    // --- sessions ----------------------------------------------------------

    void close_worker(Session& s) {
        if (s.worker < 0) return;
        epoll_ctl(epoll, EPOLL_CTL_DEL, s.worker, nullptr);
        ::close(s.worker);
        s.worker = -1;
        s.worker_events = 0;
        s.to_worker.clear();
    }

    void close_session(Session& s) {
        close_worker(s);
        if (s.mta >= 0) {
            epoll_ctl(epoll, EPOLL_CTL_DEL, s.mta, nullptr);
            ::close(s.mta);
            s.mta = -1;
        }
        waiting.erase(s.id);
        sessions.erase(s.id);  // `s` is gone from here on
        n_open--;
    }

    void accept_all(Clock::time_point now) {
        for (int i = 0; i < 64; ++i) {
            sockaddr_storage sa{};
            socklen_t len = sizeof sa;
            int fd = accept4(listen, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    emfile_logged = false;
                    return;
                }
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // The connections wait in the backlog; try again shortly.
                    if (!emfile_logged)
                        log_line(LOG_ERR, "proxy: cannot accept a milter connection: " + errno_text(errno) +
                                              "; pausing " + std::to_string(accept_pause.count()) + " ms");
                    emfile_logged = true;
                    pause_accepting(now + accept_pause);
                    return;
                }
                log_line(LOG_ERR, "proxy: accept: " + errno_text(errno));
                return;
            }
            auto s = std::make_unique<Session>();
            s->id = next_id++;
            s->peer = peer_of(fd, sa);
            s->mta = fd;
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = tag_of(s->id, mta_side);
            if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
                log_line(LOG_ERR, "proxy: epoll_ctl: " + errno_text(errno));
                ::close(fd);
                continue;
            }
            s->mta_events = EPOLLIN;
            Session& ref = *s;
            sessions.emplace(ref.id, std::move(s));
            n_open++;
            n_accepted++;
            set_deadline(ref, now + settings.hold_limit);
            waiting.insert(ref.id);
            connect_worker(ref, now);
        }
    }

    void pause_accepting(Clock::time_point until) {
        if (accepting) epoll_ctl(epoll, EPOLL_CTL_DEL, listen, nullptr);
        accepting = false;
        accept_again = until;
    }

    void resume_accepting() {
        if (accepting || draining) return;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = listen_tag;
        epoll_ctl(epoll, EPOLL_CTL_ADD, listen, &ev);
        accepting = true;
        accept_again = Clock::time_point::max();
    }

    // Connects a waiting session to the worker, if one is up and takes it.
    void connect_worker(Session& s, Clock::time_point now) {
        if (!s.waiting_for_worker() || worker_path.empty()) return;
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {  // out of descriptors: try again soon
            next_retry = std::min(next_retry, now + retry_interval);
            return;
        }
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, worker_path.c_str(), std::min(worker_path.size(), sizeof sa.sun_path - 1));
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
            ::close(fd);  // refused, missing, backlog full: try again soon
            next_retry = std::min(next_retry, now + retry_interval);
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag_of(s.id, worker_side);
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
            ::close(fd);
            return;
        }
        s.worker = fd;
        s.worker_events = EPOLLIN;
        n_worker++;
        waiting.erase(s.id);
        if (!s.held) set_deadline(s, Clock::time_point::max());
        pump(s);
    }

    // Hands checked MTA packets to the worker, stopping at a held one. An
    // RCPT TO the master answered waits here until a command the MTA waits
    // for the worker's answer to follows it (or `all`: the MTA is gone), and
    // goes with that one in one write: libmilter (workers pool) then reads
    // both in one wakeup of its session instead of two, and the worker's
    // answer to it, which nobody waits for, costs no turn of its own.
    // (Relaying it is a must: libmilter takes no DATA after MAIL FROM
    // without an RCPT TO unless the RCPT step was negotiated away.)
    void pump(Session& s, bool all = false) {
        if (s.worker < 0 || s.orphan) return;
        bool hold_back_early = !all && std::none_of(s.pending.begin(), s.pending.end(),
                                                    [](const Pending& p) { return p.awaits && !p.early; });
        while (!s.held && !s.pending.empty()) {
            Pending& p = s.pending.front();
            if (p.early && hold_back_early) break;
            char c = p.frame.command;
            if ((c == m::command::mail || c == m::command::rcpt) && !p.asked && settings.hold) {
                p.asked = true;
                if (settings.hold(HoldRequest{s.id, c, p.frame.data, s.client_address, s.helo, hold_fd})) {
                    s.held = true;
                    set_deadline(s, Clock::now() + settings.hold_limit);
                    break;
                }
            }
            s.to_worker.append(m::encode(p.frame));
            s.pending_bytes -= 5 + p.frame.data.size();
            s.pending.pop_front();
        }
        flush_worker(s);
    }

    void flush_worker(Session& s) {
        if (s.worker < 0) return;
        if (int e = s.to_worker.flush(s.worker); e != 0) worker_broke(s, "write: " + errno_text(e));
    }

    // The answer the master gives in the worker's place to `cmd`.
    m::Frame master_answer(const Session& s, char cmd) const {
        if (cmd == m::command::negotiate) {
            // No actions, every step, a reply to each: the least the master
            // needs to answer on its own.
            m::Negotiation n;
            n.version =
                std::min(s.conv.mta() ? s.conv.mta()->version : m::protocol_version, m::protocol_version);
            return m::Frame{m::reply::negotiate, m::negotiation_data(n)};
        }
        bool content =
            cmd == m::command::end_of_headers || cmd == m::command::body || cmd == m::command::end_of_message;
        if (settings.on_internal_error == policy::OnInternalError::accept && !content)
            return m::continue_reply();
        return m::reply_code_reply(policy::replies::internal_error.code,
                                   policy::replies::internal_error.xcode, settings.tempfail_text);
    }

    // An RCPT TO of the transaction the worker said every recipient
    // continues in, with no answer before it still owed to the MTA: answered
    // continue now, one hop instead of three, and relayed all the same, with
    // the next command the worker answers (pump; the worker's own continue
    // is dropped). True when answered.
    bool answer_early(Session& s, char command, const m::Conversation::Step& step) {
        if (command != m::command::rcpt || !step.answered || s.orphan || s.mails_taken == 0 ||
            s.rcpt_continue != s.mails_taken || s.conv.awaited().size() != s.answered_early + 1)
            return false;
        s.to_mta.append(m::encode(m::continue_reply()));
        s.answered_early++;
        n_early++;
        return true;
    }

    // Answers every command the MTA still waits for. Returns how many.
    size_t answer_owed(Session& s) {
        size_t n = 0;
        while (!s.conv.awaited().empty()) {
            m::Frame f = master_answer(s, s.conv.awaited().front());
            s.conv.reply(f);
            if (s.answered_early > 0) {  // the MTA has its answer
                s.answered_early--;
                continue;
            }
            s.to_mta.append(m::encode(f));
            ++n;
        }
        n_master += n;
        return n;
    }

    // The worker connection is gone (or never came): the master answers.
    void orphan(Session& s, const std::string& why) {
        if (s.quit) {  // the MTA said QUIT: a worker that closes is done
            close_session(s);
            return;
        }
        close_worker(s);
        waiting.erase(s.id);
        s.orphan = true;
        s.held = false;
        s.pending.clear();
        s.pending_bytes = 0;
        set_deadline(s, Clock::time_point::max());
        n_orphaned++;
        size_t n = answer_owed(s);
        log_line(LOG_WARNING, who(s) + " worker: " + why +
                                  "; the master answers this session: " + std::to_string(n) +
                                  " owed now, the rest as it comes, with " + answer_name());
        flush_mta(s);
    }

    void worker_broke(Session& s, const std::string& why) { orphan(s, why); }

    // A packet the worker must never see: answer what was owed before it,
    // then close. The packet itself gets no answer, as libmilter gives none
    // to what it cannot read (it closes the connection): the MTA then
    // applies its own default for the milter (Postfix milter_default_action).
    void refuse(Session& s, const std::string& reason) {
        n_refused++;
        size_t n = answer_owed(s);
        log_line(LOG_WARNING, who(s) + " refused milter packet: " + reason + "; " +
                                  (n ? std::to_string(n) + " owed answer(s) given: " + answer_name() + "; "
                                     : std::string()) +
                                  "closing");
        close_worker(s);
        waiting.erase(s.id);
        s.pending.clear();
        s.pending_bytes = 0;
        s.closing = true;
        set_deadline(s, Clock::now() + settings.hold_limit);
        flush_mta(s);
    }

    void flush_mta(Session& s) {
        if (s.mta < 0) return;
        if (int e = s.to_mta.flush(s.mta); e != 0) {
            close_session(s);
            return;
        }
        if (s.closing && s.to_mta.empty()) close_session(s);
    }

    // The MTA's macros: its own session macro dropped (only the master sets
    // it), the queue id noted, the master's pair added at the connect stage.
    void rewrite_macros(Session& s, m::Frame& f) {
        std::optional<m::MacroPacket> p = m::parse_macros(f.data);
        if (!p) return;
        for (const m::Macro& x : p->macros)
            if (x.name == "i" && !x.value.empty()) s.queue_id = x.value;
        auto own = std::remove_if(p->macros.begin(), p->macros.end(),
                                  [](const m::Macro& x) { return x.name == m::session_macro; });
        if (own != p->macros.end()) {
            if (!s.dropped_own_macro)
                log_line(LOG_WARNING, who(s) + " the MTA sent " + m::session_macro + " itself: dropped");
            s.dropped_own_macro = true;
            p->macros.erase(own, p->macros.end());
        }
        if (p->stage == m::command::connect) {
            // Appended, never sent apart: a second packet of the stage would
            // replace the MTA's macros in libmilter.
            s.connect_macros = true;
            p->macros.push_back({m::session_macro, std::to_string(s.id)});
            if (m::macro_data(*p).size() > s.conv.max_data()) {
                log_line(LOG_WARNING, who(s) + " connect macros too large to add " + m::session_macro);
                p->macros.pop_back();
            }
        }
        f.data = m::macro_data(*p);
    }

    // The client's address of a connect packet: HOSTNAME NUL FAMILY PORT(2) ADDRESS NUL,
    // family '4' or '6' (check_command() has checked the form).
    static void note_connect(Session& s, const std::string& data) {
        s.client_address.clear();
        s.helo.clear();
        size_t nul = data.find('\0');
        if (nul == std::string::npos || nul + 4 > data.size()) return;
        char family = data[nul + 1];
        if (family != '4' && family != '6') return;
        s.client_address = std::string(data.c_str() + nul + 4);
    }

    void enqueue(Session& s, m::Frame f, bool awaits = false, bool early = false) {
        s.pending_bytes += 5 + f.data.size();
        s.pending.push_back(Pending{std::move(f), false, awaits, early});
    }

    void on_mta_frame(Session& s, m::Frame f) {
        if (std::string reason = m::check_command(f); !reason.empty()) {
            refuse(s, reason);
            return;
        }
        const char c = f.command;
        if (c == m::command::macro) rewrite_macros(s, f);
        if (c == m::command::connect && !s.connect_macros) {
            m::Frame d{m::command::macro,
                       m::macro_data({m::command::connect, {{m::session_macro, std::to_string(s.id)}}})};
            s.conv.command(d);
            if (!s.orphan) enqueue(s, std::move(d));
        }
        if (c == m::command::connect || c == m::command::quit_new_connection) s.connect_macros = false;
        if (c == m::command::quit) s.quit = true;
        if (c == m::command::connect) note_connect(s, f.data);
        if (c == m::command::helo) s.helo = std::string(f.data.c_str());
        m::Conversation::Step step = s.conv.command(f);
        if (c == m::command::mail && step.taken) ++s.mails_taken;
        bool early = answer_early(s, c, step);
        if (s.orphan) {
            if (step.answered) answer_owed(s);
            return;
        }
        enqueue(s, std::move(f), step.answered, early);
    }

    void read_mta(Session& s) {
        char buf[read_chunk];
        ssize_t n = ::recv(s.mta, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        SessionId id = s.id;
        if (n <= 0) {
            // The MTA is gone: what is queued for the worker goes if it can,
            // then both ends close (libmilter ends the session on EOF).
            pump(s, true);
            if (auto it = sessions.find(id); it != sessions.end()) close_session(*it->second);
            return;
        }
        if (s.closing) return;  // refused: nothing more is read
        s.from_mta.feed(std::string_view(buf, size_t(n)));
        for (;;) {
            m::Frame f;
            auto st = s.from_mta.next(f);
            if (st == m::FrameParser::Status::need_more) break;
            if (st == m::FrameParser::Status::error) {
                refuse(s, s.from_mta.error());
                return;
            }
            on_mta_frame(s, std::move(f));
            if (!sessions.count(id) || s.closing) return;
        }
        pump(s);
        if (!sessions.count(id)) return;
        flush_mta(s);
    }

    void read_worker(Session& s) {
        char buf[read_chunk];
        ssize_t n = ::recv(s.worker, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        if (n == 0) {
            worker_broke(s, "closed the connection");
            return;
        }
        if (n < 0) {
            worker_broke(s, "read: " + errno_text(errno));
            return;
        }
        s.from_worker.feed(std::string_view(buf, size_t(n)));
        for (;;) {
            m::Frame f;
            auto st = s.from_worker.next(f);
            if (st == m::FrameParser::Status::need_more) break;
            if (st == m::FrameParser::Status::error) {
                worker_broke(s, "sent " + s.from_worker.error());
                return;
            }
            m::Conversation::ReplyResult r = s.conv.reply(f);
            if (r.effect == m::Conversation::Effect::unexpected) {
                std::string code(1, f.command);
                worker_broke(s, "sent reply '" + util::sanitize(code, util::TextUse::log_value) +
                                    "' when none was due");
                return;
            }
            if (r.command == m::command::negotiate) s.from_mta.set_max_data(s.conv.max_data());
            if (s.answered_early > 0) {  // the MTA has its answer: the worker's goes no further
                if (r.effect != m::Conversation::Effect::answered) continue;
                s.answered_early--;
                if (f.command != m::reply::continue_)
                    log_line(LOG_WARNING,
                             who(s) + " worker answered '" +
                                 util::sanitize(std::string(1, f.command), util::TextUse::log_value) +
                                 "' to an RCPT TO the master had answered continue");
                continue;
            }
            s.to_mta.append(m::encode(f));
        }
        flush_mta(s);
    }

    bool idle(const Session& s) const {
        return s.conv.awaited().empty() && !s.conv.in_transaction() && s.from_mta.buffered() == 0 &&
               s.pending.empty() && s.to_worker.empty() && s.to_mta.empty();
    }

    void on_event(uint64_t tag, uint32_t events) {
        SessionId id = tag >> 1;
        auto it = sessions.find(id);
        if (it == sessions.end()) return;
        Session& s = *it->second;
        bool broken = events & (EPOLLHUP | EPOLLERR);
        if ((tag & 1) == mta_side) {
            if (events & EPOLLOUT) flush_mta(s);
            // A hung-up MTA is read to its end even when back-pressure holds
            // it: the socket's buffer bounds what comes.
            if (sessions.count(id) && ((events & EPOLLIN) || broken)) read_mta(s);
        } else {
            if (events & EPOLLOUT) flush_worker(s);
            if (sessions.count(id) && s.worker >= 0 && ((events & EPOLLIN) || broken)) read_worker(s);
        }
        after(id);
    }

    // After anything happened to a session: drain-time closing, epoll interest.
    void after(SessionId id) {
        auto it = sessions.find(id);
        if (it == sessions.end()) return;
        Session& s = *it->second;
        if (closing_idle && idle(s)) {
            close_session(s);
            return;
        }
        update(s);
    }

    void handle_requests(Clock::time_point now) {
        uint64_t count;
        ssize_t ignored = ::read(wake, &count, sizeof count);
        (void)ignored;
        Requests r;
        {
            auto h = requests.lock();
            std::swap(r, *h);
        }
        if (r.stop) stopping = true;
        if (r.worker) {
            worker_path = *r.worker;
            std::vector<SessionId> ids(waiting.begin(), waiting.end());
            for (SessionId id : ids) {
                if (auto it = sessions.find(id); it != sessions.end()) {
                    connect_worker(*it->second, now);
                    after(id);
                }
            }
        }
        if (r.drain && !draining) {
            if (r.take_backlog) {
                for (int i = 0; i < 64 && accepting; ++i) {
                    size_t before = n_accepted;
                    accept_all(now);
                    if (n_accepted - before < 64) break;
                }
            }
            draining = true;
            if (accepting) epoll_ctl(epoll, EPOLL_CTL_DEL, listen, nullptr);
            accepting = false;
            accept_again = Clock::time_point::max();
            listen_released = true;
        }
        if (r.answers) {
            settings.on_internal_error = r.answers->first;
            settings.tempfail_text = std::move(r.answers->second);
        }
        if (r.close_idle) {
            closing_idle = true;
            std::vector<SessionId> ids;
            for (const auto& [id, s] : sessions) ids.push_back(id);
            for (SessionId id : ids) after(id);
        }
        for (size_t i = 0; i < r.hold_channels.size(); ++i) {
            if (i + 1 < r.hold_channels.size()) {
                ::close(r.hold_channels[i]);
                continue;
            }
            close_hold_channel();
            hold_fd = r.hold_channels[i];
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = hold_tag;
            if (epoll_ctl(epoll, EPOLL_CTL_ADD, hold_fd, &ev) != 0) {
                log_line(LOG_ERR, "proxy: epoll_ctl (hold channel): " + errno_text(errno));
                ::close(hold_fd);
                hold_fd = -1;
            }
        }
    }

    void release_held(SessionId id) {
        auto it = sessions.find(id);
        if (it == sessions.end() || !it->second->held) return;
        release_session(*it->second);
        after(id);
    }

    // "rcpt\tID\tN": the worker's hint that the session's N-th transaction
    // answers every RCPT TO continue. Taken only for the transaction open now
    // (a late hint never reaches the next one).
    void note_rcpt_hint(const char* rest) {
        char* end = nullptr;
        SessionId id = std::strtoull(rest, &end, 10);
        if (*end != '\t') return;
        uint64_t n = std::strtoull(end + 1, nullptr, 10);
        auto it = sessions.find(id);
        if (it == sessions.end() || it->second->mails_taken != n || !it->second->conv.in_transaction())
            return;
        it->second->rcpt_continue = n;
    }

    // "ready\tID" packets; at the end of the channel every held session goes on.
    void read_hold_channel() {
        std::string m;
        for (;;) {
            Received r = receive_message(hold_fd, m, false);
            if (r == Received::nothing) return;
            if (r == Received::ended) {
                close_hold_channel();
                return;
            }
            if (m.rfind("ready\t", 0) == 0) release_held(std::strtoull(m.c_str() + 6, nullptr, 10));
            if (m.rfind("rcpt\t", 0) == 0) note_rcpt_hint(m.c_str() + 5);
        }
    }

    void close_hold_channel() {
        if (hold_fd < 0) return;
        epoll_ctl(epoll, EPOLL_CTL_DEL, hold_fd, nullptr);
        ::close(hold_fd);
        hold_fd = -1;
        std::vector<SessionId> held;
        for (const auto& [id, s] : sessions)
            if (s->held) held.push_back(id);
        for (SessionId id : held) release_held(id);
    }

    void release_session(Session& s) {
        s.held = false;
        set_deadline(s,
                     s.waiting_for_worker() ? Clock::now() + settings.hold_limit : Clock::time_point::max());
        pump(s);
    }

    void handle_timers(Clock::time_point now) {
        while (!timers.empty() && timers.begin()->first <= now) {
            auto [when, id] = *timers.begin();
            timers.erase(timers.begin());
            auto it = sessions.find(id);
            if (it == sessions.end() || it->second->deadline != when) continue;
            Session& s = *it->second;
            s.deadline = Clock::time_point::max();
            if (s.closing) {
                close_session(s);
                continue;
            }
            if (s.held) {
                release_session(s);
            } else if (s.waiting_for_worker()) {
                orphan(s, worker_path.empty()
                              ? "none up within " + std::to_string(settings.hold_limit.count()) + " ms"
                              : "socket " + worker_path + " refused connections for " +
                                    std::to_string(settings.hold_limit.count()) + " ms");
            }
            after(id);
        }
        if (next_retry <= now) {
            next_retry = Clock::time_point::max();
            std::vector<SessionId> ids(waiting.begin(), waiting.end());
            for (SessionId id : ids) {
                if (auto it = sessions.find(id); it != sessions.end()) {
                    connect_worker(*it->second, now);
                    after(id);
                }
            }
        }
        if (accept_again <= now) resume_accepting();
    }

    int timeout_ms(Clock::time_point now) const {
        Clock::time_point next = std::min(
            {next_retry, accept_again, timers.empty() ? Clock::time_point::max() : timers.begin()->first});
        if (next == Clock::time_point::max()) return -1;
        if (next <= now) return 0;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
        return int(std::min<long long>(ms, 60 * 1000));
    }

    void run() {
        epoll_event events[128];
        while (!stopping) {
            int n = epoll_wait(epoll, events, 128, timeout_ms(Clock::now()));
            if (n < 0 && errno != EINTR)
                throw std::system_error(errno, std::generic_category(), "epoll_wait");
            Clock::time_point now = Clock::now();
            // Requests first: a drain asked for before a connection came is
            // never late for it.
            for (int i = 0; i < n; ++i)
                if (events[i].data.u64 == wake_tag) handle_requests(now);
            for (int i = 0; i < n; ++i) {
                uint64_t tag = events[i].data.u64;
                if (tag == listen_tag) {
                    if (accepting) accept_all(now);
                } else if (tag == hold_tag) {
                    if (hold_fd >= 0) read_hold_channel();
                } else if (tag != wake_tag) {
                    on_event(tag, events[i].events);
                }
            }
            handle_timers(Clock::now());
        }
        std::vector<SessionId> ids;
        for (const auto& [id, s] : sessions) ids.push_back(id);
        for (SessionId id : ids) close_session(*sessions.at(id));
    }
};

Proxy::Proxy(int listen_fd, ProxySettings settings)
    : impl_(std::make_unique<Impl>(listen_fd, std::move(settings))) {
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0)
        throw std::system_error(errno, std::generic_category(), "proxy: listening socket");
    impl_->epoll = epoll_create1(EPOLL_CLOEXEC);
    if (impl_->epoll < 0) throw std::system_error(errno, std::generic_category(), "proxy: epoll_create1");
    impl_->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl_->wake < 0) {
        ::close(impl_->epoll);
        throw std::system_error(errno, std::generic_category(), "proxy: eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listen_tag;
    epoll_ctl(impl_->epoll, EPOLL_CTL_ADD, listen_fd, &ev);
    ev.data.u64 = wake_tag;
    epoll_ctl(impl_->epoll, EPOLL_CTL_ADD, impl_->wake, &ev);
}

Proxy::~Proxy() {
    std::vector<SessionId> ids;
    for (const auto& [id, s] : impl_->sessions) ids.push_back(id);
    for (SessionId id : ids) impl_->close_session(*impl_->sessions.at(id));
    if (impl_->hold_fd >= 0) ::close(impl_->hold_fd);
    for (int fd : impl_->requests.lock()->hold_channels) ::close(fd);
    ::close(impl_->wake);
    ::close(impl_->epoll);
}

void Proxy::run() {
    impl_->run();
}

void Proxy::stop() {
    impl_->requests.lock()->stop = true;
    impl_->wakeup();
}

void Proxy::worker_up(std::string unix_path) {
    impl_->requests.lock()->worker = std::move(unix_path);
    impl_->wakeup();
}

void Proxy::worker_down() {
    impl_->requests.lock()->worker = std::string();
    impl_->wakeup();
}

void Proxy::begin_drain(bool take_backlog) {
    {
        auto r = impl_->requests.lock();
        r->drain = true;
        r->take_backlog = r->take_backlog || take_backlog;
    }
    impl_->wakeup();
}

void Proxy::close_idle() {
    impl_->requests.lock()->close_idle = true;
    impl_->wakeup();
}

void Proxy::hold_channel(int fd) {
    impl_->requests.lock()->hold_channels.push_back(fd);
    impl_->wakeup();
}

void Proxy::set_answers(policy::OnInternalError on_internal_error, std::string tempfail_text) {
    impl_->requests.lock()->answers = std::make_pair(on_internal_error, std::move(tempfail_text));
    impl_->wakeup();
}

bool Proxy::drained_listen() const {
    return impl_->listen_released;
}

ProxyCounters Proxy::counters() const {
    ProxyCounters c;
    c.open = impl_->n_open;
    c.accepted = impl_->n_accepted;
    c.refused_packets = impl_->n_refused;
    c.orphaned = impl_->n_orphaned;
    c.master_answers = impl_->n_master;
    c.worker_connects = impl_->n_worker;
    c.early_rcpts = impl_->n_early;
    return c;
}

}  // namespace regmilter::daemon
