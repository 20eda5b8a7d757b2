// daemon: how a policy::Reply becomes what libmilter sends the MTA — the
// reply text (with '%' escaped for smfi_setreply), the header edits and
// recipient removals of the end of message, and the status code. Decides
// nothing: the Reply says it all. Behind an interface so the translation is
// unit-tested without an MTA. Thread-safety: one Mta per callback call.
#pragma once

#include <libmilter/mfapi.h>

#include <string>
#include <string_view>

#include "policy/policy.hpp"

namespace regmilter::daemon {

// The edits libmilter offers at end of message, and the reply text.
class Mta {
public:
    virtual ~Mta() = default;
    virtual bool set_reply(const std::string& code, const std::string& xcode, const std::string& text) = 0;
    virtual bool insert_header(int index, const std::string& name, const std::string& value) = 0;
    virtual bool remove_header(const std::string& name, int index) = 0;
    virtual bool remove_rcpt(const std::string& arg) = 0;
};

// The Mta of one libmilter callback.
class LibmilterMta : public Mta {
public:
    explicit LibmilterMta(SMFICTX* ctx) : ctx_(ctx) {}
    bool set_reply(const std::string& code, const std::string& xcode, const std::string& text) override;
    bool insert_header(int index, const std::string& name, const std::string& value) override;
    bool remove_header(const std::string& name, int index) override;
    bool remove_rcpt(const std::string& arg) override;

private:
    SMFICTX* ctx_;
};

// smfi_setreply reads the text as a format: every '%' doubled.
std::string escape_reply_text(std::string_view text);

// Carries out `r` and returns the status for libmilter. With `edits` (end of
// message) first the header removals (forged Authentication-Results: they go
// before anything else can fail), then the insertions in order at index 0,
// 1, ... (our Authentication-Results above the MTA's Received), then the
// recipient removals. An edit the MTA refuses stops there and sets `failed`
// to what failed: the caller answers with the session's internal error.
// A refused reply text is not an error (the MTA's own text goes out).
sfsistat carry_out(Mta& mta, const policy::Reply& r, bool edits, std::string& failed);

}  // namespace regmilter::daemon
