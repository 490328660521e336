#include "sio_regex.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <re2/re2.h>

struct sio_regex {
    RE2 re2;
    explicit sio_regex(re2::StringPiece pattern, const RE2::Options &options) : re2(pattern, options) {}
};

extern "C" sio_regex *sio_regex_compile(const char *pattern, size_t length, char **error) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_encoding(RE2::Options::EncodingUTF8);
    sio_regex *regex = new (std::nothrow) sio_regex(re2::StringPiece(pattern, length), options);
    if (regex == nullptr) {
        if (error) *error = strdup("out of memory");
        return nullptr;
    }
    if (!regex->re2.ok()) {
        if (error) *error = strdup(regex->re2.error().c_str());
        delete regex;
        return nullptr;
    }
    return regex;
}

extern "C" int sio_regex_match_prefix(const sio_regex *regex, const char *text, size_t length) {
    return regex->re2.Match(re2::StringPiece(text, length), 0, length, RE2::ANCHOR_START, nullptr, 0) ? 1 : 0;
}

extern "C" void sio_regex_free(sio_regex *regex) {
    delete regex;
}
