// null-milter: a libmilter filter that does nothing, the yardstick of make
// bench's comparison (t/bench/compare.sh). Two shapes:
//   all    every callback registered and every stage answered "continue":
//          what any filter pays for the protocol when it asks for everything;
//   floor  only MAIL FROM and end of message, every other stage negotiated
//          away (SMFIP_NO*): the least a filter that decides at MAIL FROM can pay.
// Every answer is SMFIS_CONTINUE; no DNS, no state. Stops itself after
// --max-seconds (default 3600) or on SIGTERM/SIGINT (libmilter's handling).
//
//   null-milter --socket unix:PATH|inet:PORT@127.0.0.1 --shape all|floor [--max-seconds S]
//
// Exit: 0 after a clean stop, 1 when libmilter fails, 2 on bad usage.
#include <libmilter/mfapi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

sfsistat next_step(SMFICTX*) {
    return SMFIS_CONTINUE;
}
sfsistat on_connect(SMFICTX*, char*, _SOCK_ADDR*) {
    return SMFIS_CONTINUE;
}
sfsistat on_args(SMFICTX*, char**) {
    return SMFIS_CONTINUE;
}
sfsistat on_text(SMFICTX*, char*) {
    return SMFIS_CONTINUE;
}
sfsistat on_header(SMFICTX*, char*, char*) {
    return SMFIS_CONTINUE;
}
sfsistat on_body(SMFICTX*, unsigned char*, size_t) {
    return SMFIS_CONTINUE;
}
sfsistat on_unknown(SMFICTX*, const char*) {
    return SMFIS_CONTINUE;
}

// Every stage, each with a reply.
sfsistat negotiate_all(SMFICTX*, unsigned long, unsigned long, unsigned long, unsigned long,
                       unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    *pf0 = 0;
    *pf1 = 0;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

// MAIL FROM and end of message only (the MTA always sends end of message).
sfsistat negotiate_floor(SMFICTX*, unsigned long, unsigned long f1, unsigned long, unsigned long,
                         unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    constexpr unsigned long skipped = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NOBODY |
                                      SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA;
    *pf0 = 0;
    *pf1 = f1 & skipped;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: null-milter --socket unix:PATH|inet:PORT@127.0.0.1 --shape all|floor "
                 "[--max-seconds 1..86400]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket, shape;
    long max_seconds = 3600;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--socket")
            socket = argv[i + 1];
        else if (a == "--shape")
            shape = argv[i + 1];
        else if (a == "--max-seconds")
            max_seconds = std::atol(argv[i + 1]);
        else
            usage();
    }
    if (argc % 2 == 0 || socket.empty() || (shape != "all" && shape != "floor") || max_seconds < 1 ||
        max_seconds > 86400)
        usage();

    bool all = shape == "all";
    smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>(all ? "null-all" : "null-floor");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = 0;
    desc.xxfi_envfrom = on_args;
    desc.xxfi_eom = next_step;
    desc.xxfi_negotiate = all ? negotiate_all : negotiate_floor;
    if (all) {
        desc.xxfi_connect = on_connect;
        desc.xxfi_helo = on_text;
        desc.xxfi_envrcpt = on_args;
        desc.xxfi_header = on_header;
        desc.xxfi_eoh = next_step;
        desc.xxfi_body = on_body;
        desc.xxfi_abort = next_step;
        desc.xxfi_close = next_step;
        desc.xxfi_unknown = on_unknown;
        desc.xxfi_data = next_step;
    }
    if (smfi_setconn(const_cast<char*>(socket.c_str())) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        std::fprintf(stderr, "null-milter: cannot open %s\n", socket.c_str());
        return 1;
    }
    std::thread([max_seconds] {
        sleep(unsigned(max_seconds));
        smfi_stop();
    }).detach();
    std::fprintf(stderr, "null-milter: %s listening on %s\n", shape.c_str(), socket.c_str());
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
