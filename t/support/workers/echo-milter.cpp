// echo-milter: a libmilter filter for the relay's tests (t/unit/proxy_test.cpp).
// It answers every stage "continue" and, at end of message, adds the header
// "X-Echo-Session: VALUE", VALUE being what smfi_getsymval() gives for the
// master's session macro ({regmilter_session}) or "(none)": a test sees
// what a libmilter worker sees. It asks for that macro at connect as
// regmilter does for its own, so a malformed macro packet that reached it
// would make it read past libmilter's array (contrib/libmilter-getsymval.md).
// --hang-at STAGE makes that stage's callback sleep (a test kills it there).
//
//   echo-milter --socket unix:PATH [--hang-at connect|helo|mail|rcpt|eoh|eom] [--max-seconds S]
//
// Stops after --max-seconds (default 600) or on SIGTERM. Exit: 0 after a
// clean stop, 1 when libmilter fails, 2 on bad usage.
#include <libmilter/mfapi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::string g_hang_at;

sfsistat maybe_hang(const char* stage) {
    if (g_hang_at == stage) sleep(3600);
    return SMFIS_CONTINUE;
}

const char* session_of(SMFICTX* ctx) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>("{regmilter_session}"));
    return v ? v : "(none)";
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
    (void)session_of(ctx);
    return maybe_hang("connect");
}
sfsistat on_helo(SMFICTX*, char*) {
    return maybe_hang("helo");
}
sfsistat on_mail(SMFICTX*, char**) {
    return maybe_hang("mail");
}
sfsistat on_rcpt(SMFICTX*, char**) {
    return maybe_hang("rcpt");
}
sfsistat on_header(SMFICTX*, char*, char*) {
    return SMFIS_CONTINUE;
}
sfsistat on_eoh(SMFICTX*) {
    return maybe_hang("eoh");
}
sfsistat on_body(SMFICTX*, unsigned char*, size_t) {
    return SMFIS_CONTINUE;
}
sfsistat on_eom(SMFICTX* ctx) {
    if (smfi_addheader(ctx, const_cast<char*>("X-Echo-Session"), const_cast<char*>(session_of(ctx))) !=
        MI_SUCCESS)
        return SMFIS_TEMPFAIL;
    return maybe_hang("eom");
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: echo-milter --socket unix:PATH [--hang-at connect|helo|mail|rcpt|eoh|eom] "
                 "[--max-seconds 1..86400]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket;
    long max_seconds = 600;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--socket")
            socket = argv[i + 1];
        else if (a == "--hang-at")
            g_hang_at = argv[i + 1];
        else if (a == "--max-seconds")
            max_seconds = std::atol(argv[i + 1]);
        else
            usage();
    }
    if (argc % 2 == 0 || socket.rfind("unix:", 0) != 0 || max_seconds < 1 || max_seconds > 86400) usage();

    smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>("echo-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS;
    desc.xxfi_connect = on_connect;
    desc.xxfi_helo = on_helo;
    desc.xxfi_envfrom = on_mail;
    desc.xxfi_envrcpt = on_rcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_eoh;
    desc.xxfi_body = on_body;
    desc.xxfi_eom = on_eom;
    if (smfi_setconn(const_cast<char*>(socket.c_str())) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        std::fprintf(stderr, "echo-milter: cannot open %s\n", socket.c_str());
        return 1;
    }
    std::thread([max_seconds] {
        sleep(unsigned(max_seconds));
        smfi_stop();
    }).detach();
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
