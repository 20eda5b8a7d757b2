// spf-suite: runs the openspf RFC 7208 conformance suite (YAML) against
// spf::check_mailfrom over an in-memory resolver loaded from each document's
// zonedata. Usage: spf-suite FILE [TESTNAME...]
// Prints one line per failure, then "spf-suite: N of M passed"; exit 0 only
// when all passed, 77 when FILE is missing, 1 otherwise.
// SPF_SUITE_TRACE=1 in the environment prints each test's evaluation trace.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../support/yaml.hpp"
#include "dns/memory_resolver.hpp"
#include "net/address.hpp"
#include "spf/check_host.hpp"

using namespace regmilter;

namespace {

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return s;
}

std::string strip_dot(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

// A record value: a scalar, or (TXT/SPF) a list of strings glued together
// (RFC 7208 §3.3), or (MX) [preference, name].
std::string rdata_of(const std::string& type, const yaml::Node& v, std::string& error) {
    if (v.is_scalar()) {
        if (type == "PTR" || type == "CNAME") return strip_dot(v.value);
        return v.value;
    }
    if (v.is_null()) return "";
    if (!v.is_seq()) {
        error = type + " value is not a scalar or a list";
        return "";
    }
    if (type == "MX") {
        if (v.items.size() != 2) {
            error = "MX value is not [preference, name]";
            return "";
        }
        return v.items[0].value + " " + strip_dot(v.items[1].value);
    }
    std::string out;
    for (const auto& item : v.items) out += item.value;
    return out;
}

// Load one document's zonedata. The suite's conventions (its header comment):
// SPF-type records are duplicated into TXT unless the name has TXT records or
// "TXT: NONE"; "TIMEOUT" makes queries for types the name has no records of
// time out.
bool load_zone(const yaml::Node& zone, dns::MemoryResolver& r, std::string& error) {
    static const std::pair<const char*, dns::RrType> types[] = {
        {"A", dns::RrType::a},     {"AAAA", dns::RrType::aaaa},   {"MX", dns::RrType::mx},
        {"PTR", dns::RrType::ptr}, {"CNAME", dns::RrType::cname}, {"TXT", dns::RrType::txt},
        {"SPF", dns::RrType::spf},
    };
    for (const auto& [name, list] : zone.entries) {
        if (!list.is_seq()) {
            error = "zonedata " + name + " is not a list";
            return false;
        }
        bool timeout = false, txt_none = false, have_txt = false;
        std::vector<std::string> spf;
        r.add_empty(name);
        for (const auto& entry : list.items) {
            if (entry.is_scalar() && entry.value == "TIMEOUT") {
                timeout = true;
                continue;
            }
            if (!entry.is_map() || entry.entries.size() != 1) {
                error = "zonedata " + name + ": entry is not TYPE: value";
                return false;
            }
            const std::string& type = entry.entries[0].first;
            const yaml::Node& value = entry.entries[0].second;
            if (type == "TXT" && value.is_scalar() && value.value == "NONE") {
                txt_none = true;
                continue;
            }
            bool known = false;
            for (const auto& [tname, ttype] : types) {
                if (type != tname) continue;
                known = true;
                std::string rd = rdata_of(type, value, error);
                if (!error.empty()) {
                    error = "zonedata " + name + ": " + error;
                    return false;
                }
                if (ttype == dns::RrType::spf) spf.push_back(rd);
                if (ttype == dns::RrType::txt) have_txt = true;
                r.add(name, ttype, rd);
            }
            if (!known) {
                error = "zonedata " + name + ": unknown type " + type;
                return false;
            }
        }
        if (!have_txt && !txt_none)
            for (const auto& s : spf) r.add(name, dns::RrType::txt, s);
        if (timeout) r.add_failure_for_missing(name, dns::DnsStatus::timeout);
    }
    return true;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "|" : "") + v[i];
    return out;
}

// One test of the suite: "" when it passes, else why not.
std::string run_test(const std::string& name, const yaml::Node& t, dns::MemoryResolver& dns) {
    auto field = [&](const char* k) {
        const yaml::Node* n = t.get(k);
        return n && n->is_scalar() ? n->value : std::string();
    };
    std::vector<std::string> want;
    if (const yaml::Node* r = t.get("result")) {
        if (r->is_scalar()) want.push_back(r->value);
        for (const auto& i : r->items) want.push_back(i.value);
    }
    auto ip = net::Address::parse(field("host"));
    if (!ip) return "host \"" + field("host") + "\" is not an address";
    spf::Request req;
    req.ip = *ip;
    req.sender = field("mailfrom");
    req.helo = field("helo");
    spf::Options opt;
    if (const char* tr = std::getenv("SPF_SUITE_TRACE"); tr && *tr && *tr != '0') {
        std::cout << "== " << name << "\n";
        opt.trace = [](std::string_view line) { std::cout << "   " << line << "\n"; };
    }
    spf::Outcome out = spf::check_mailfrom(dns, req, opt);
    std::string got = spf::to_string(out.result);
    bool ok = false;
    for (const auto& w : want) ok = ok || w == got;
    std::string why;
    const yaml::Node* exp = t.get("explanation");
    if (ok && exp && exp->is_scalar() && out.result == spf::Result::fail) {
        // "DEFAULT": the receiver's own default text, i.e. no exp=
        // explanation. Otherwise compare without case: the suite's
        // v-macro-ip6 spells %{ir} nibbles upper-case, RFC 7208 §7.4's
        // example lower-case, and DNS names compare without case.
        if (exp->value == "DEFAULT") {
            if (!out.explanation.empty()) {
                ok = false;
                why = "explanation \"" + out.explanation + "\", want the default";
            }
        } else if (lower(exp->value) != lower(out.explanation)) {
            ok = false;
            why = "explanation \"" + out.explanation + "\", want \"" + exp->value + "\"";
        }
    }
    if (ok) return "";
    std::string r = "got " + got + ", want " + join(want);
    if (!why.empty()) r += " (" + why + ")";
    if (!out.problem.empty()) r += " (problem: " + out.problem + ")";
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: spf-suite FILE [TESTNAME...]\n";
        return 2;
    }
    std::string file = argv[1];
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::cout << "spf-suite: SKIPPED: suite file " << file
                  << " not found (expected ../shared/spf-suite/rfc7208-tests.yml)" << std::endl;
        return 77;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    yaml::Documents docs = yaml::parse(ss.str());
    if (!docs.ok()) {
        std::cout << "spf-suite: cannot read " << file << ": " << docs.error << std::endl;
        return 1;
    }
    std::set<std::string> only(argv + 2, argv + argc);
    std::set<std::string> seen;
    int total = 0, passed = 0;
    for (const auto& doc : docs.docs) {
        const yaml::Node* tests = doc.get("tests");
        if (!tests || !tests->is_map()) continue;
        dns::MemoryResolver dns;
        dns.set_strict(false);
        std::string error;
        const yaml::Node* zone = doc.get("zonedata");
        if (zone && zone->is_map() && !load_zone(*zone, dns, error)) {
            std::cout << "spf-suite: " << file << ": " << error << std::endl;
            return 1;
        }
        for (const auto& [name, t] : tests->entries) {
            if (!only.empty() && !only.count(name)) continue;
            seen.insert(name);
            ++total;
            std::string why = run_test(name, t, dns);
            if (why.empty())
                ++passed;
            else
                std::cout << "FAIL " << name << ": " << why << "\n";
        }
    }
    for (const auto& n : only)
        if (!seen.count(n)) std::cout << "FAIL " << n << ": no such test in " << file << "\n";
    if (!only.empty()) total += int(only.size() - seen.size());
    std::cout << "spf-suite: " << passed << " of " << total << " passed" << std::endl;
    return passed == total && total > 0 ? 0 : 1;
}
