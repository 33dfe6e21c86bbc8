#ifndef S3CANARY_BUILD_STAMP_H
#define S3CANARY_BUILD_STAMP_H

/// What scripts/stamp.py wrote into the linked binary: `revision=COMMIT swift=VERSION`, or "" when nothing did
/// (a `swift build` of a working tree). Never NULL.
const char *s3canary_build_stamp(void);

#endif
