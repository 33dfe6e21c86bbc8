// The build's identity, filled in after linking. SwiftPM has no way to pass a value (the git commit) to one target
// without changing the flags of every target, which would rebuild BoringSSL and NIO on each commit, so the binary
// carries a fixed-size field that starts with a marker, and scripts/stamp.py (run by scripts/release.sh) finds the
// marker in the linked file and writes the stamp after it, as Go's `-ldflags -X` does at link time.
// The field lives in this C file so that the Swift optimiser cannot see its (empty) contents and fold them away.
#include "BuildStamp.h"

#define MARKER "s3-canary build stamp:"

// The marker and 104 bytes for the stamp (NUL-terminated): scripts/stamp.py knows both sizes.
__attribute__((used)) static const char field[128] = MARKER;

const char *s3canary_build_stamp(void) {
    return field + sizeof(MARKER) - 1;
}
