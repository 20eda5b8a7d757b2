#include "policy/policy.hpp"

namespace regmilter::policy {

namespace {

// A log value: bare when it is plain, otherwise "quoted" with \" \\ and \xNN.
void put(std::string& out, std::string_view key, std::string_view value) {
    if (value.size() > 512) value = value.substr(0, 512);
    bool plain = !value.empty();
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\' || c == '=') plain = false;
    }
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    if (plain) {
        out += value;
        return;
    }
    out += '"';
    static const char hex[] = "0123456789abcdef";
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

std::string log_line(const Context& ctx, const Facts& facts, Stage stage, const Verdict& v,
                     std::string_view rcpt) {
    std::string out;
    if (const std::string* id = ctx.macro("i"); id && !id->empty()) put(out, "id", *id);
    put(out, "stage", to_string(stage));
    put(out, "ip", facts.connect.ip ? facts.connect.ip->str() : "unknown");
    put(out, "helo", ctx.helo);
    if (stage >= Stage::mail) put(out, "from", "<" + ctx.mail_from + ">");
    if (!rcpt.empty()) put(out, "rcpt", "<" + std::string(rcpt) + ">");
    if (facts.mail.trust != TrustReason::none) put(out, "trust", to_string(facts.mail.trust));
    if (stage >= Stage::mail) {
        std::string spf;
        if (facts.mail.spf_mail)
            spf = spf::to_string(facts.mail.spf_mail->result);
        else if (facts.mail.spf_skipped_forwarder)
            spf = "skipped:forwarder";
        else
            spf = "skipped";
        put(out, "spf", spf);
        if (facts.mail.spf_helo) put(out, "spf_helo", spf::to_string(facts.mail.spf_helo->result));
    }
    std::string reg;
    for (const auto& e : facts.connect.registry) {
        if (!reg.empty()) reg += ',';
        reg += e.name + ":" + registry::to_string(e.status);
        if (!e.code.empty()) reg += ":" + e.code;
        if (e.bulk) reg += ":bulk";
        if (e.fcrdns_checked && !e.fcrdns_ok) reg += ":no-fcrdns";
    }
    put(out, "registry", reg.empty() ? "-" : reg);
    if (!facts.connect.registry.empty()) {
        std::string info;
        for (const auto& e : facts.connect.registry)
            if (!e.info.empty()) info += (info.empty() ? "" : "; ") + e.name + ": " + e.info;
        if (!info.empty()) put(out, "registry_info", info);
    }
    if (stage >= Stage::mail) {
        std::string bulk;
        for (const auto& s : facts.mail.envelope_bulk.signals) bulk += (bulk.empty() ? "" : ",") + s;
        if (stage == Stage::data)
            for (const auto& s : facts.data.header_bulk.signals) bulk += (bulk.empty() ? "" : ",") + s;
        put(out, "bulk", bulk.empty() ? "no" : bulk);
    }
    put(out, "action", to_string(v.action));
    if (!v.code.empty()) put(out, "code", v.code + " " + v.xcode);
    if (!v.reason.empty()) put(out, "reason", v.reason);
    if (!v.rcpts_to_remove.empty()) put(out, "removed", std::to_string(v.rcpts_to_remove.size()));
    return out;
}

}  // namespace regmilter::policy
