#include "mta.hpp"

namespace regmilter::daemon {

namespace {

char* c(const std::string& s) {
    return const_cast<char*>(s.c_str());
}

}  // namespace

bool LibmilterMta::set_reply(const std::string& code, const std::string& xcode, const std::string& text) {
    std::string escaped = escape_reply_text(text);
    return smfi_setreply(ctx_, c(code), xcode.empty() ? nullptr : c(xcode),
                         escaped.empty() ? nullptr : c(escaped)) == MI_SUCCESS;
}

bool LibmilterMta::insert_header(int index, const std::string& name, const std::string& value) {
    return smfi_insheader(ctx_, index, c(name), c(value)) == MI_SUCCESS;
}

bool LibmilterMta::remove_header(const std::string& name, int index) {
    return smfi_chgheader(ctx_, c(name), index, nullptr) == MI_SUCCESS;
}

bool LibmilterMta::remove_rcpt(const std::string& arg) {
    return smfi_delrcpt(ctx_, c(arg)) == MI_SUCCESS;
}

std::string escape_reply_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char ch : text) {
        out += ch;
        if (ch == '%') out += '%';
    }
    return out;
}

sfsistat carry_out(Mta& mta, const policy::Reply& r, bool edits, std::string& failed) {
    using policy::Action;
    if (edits) {
        for (const auto& h : r.remove_headers)
            if (!mta.remove_header(h.name, h.index)) {
                failed = "could not remove header " + h.name + "[" + std::to_string(h.index) + "]";
                return SMFIS_TEMPFAIL;
            }
        int index = 0;
        for (const auto& h : r.add_headers)
            if (!mta.insert_header(index++, h.name, h.value)) {
                failed = "could not insert header " + h.name;
                return SMFIS_TEMPFAIL;
            }
        for (const auto& arg : r.remove_rcpts)
            if (!mta.remove_rcpt(arg)) {
                failed = "could not remove recipient " + arg;
                return SMFIS_TEMPFAIL;
            }
    }
    if ((r.action == Action::tempfail || r.action == Action::reject) && !r.code.empty())
        mta.set_reply(r.code, r.xcode, r.text);
    switch (r.action) {
        case Action::continue_:
        case Action::tag:
            return SMFIS_CONTINUE;
        case Action::accept:
            return SMFIS_ACCEPT;
        case Action::tempfail:
            return SMFIS_TEMPFAIL;
        case Action::reject:
            return SMFIS_REJECT;
        case Action::discard:
            return SMFIS_DISCARD;
    }
    return SMFIS_TEMPFAIL;
}

}  // namespace regmilter::daemon
