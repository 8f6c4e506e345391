/*
 * Helpers shared by the C test harnesses (header-only: each harness is one
 * translation unit compiled by the Rust test that runs it).
 */
#ifndef KEYWARDEN_TEST_HARNESS_H
#define KEYWARDEN_TEST_HARNESS_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keywarden.h"

/* Exits with the source line when a call does not return `want`. */
#define EXPECT_RV(want, call)                                                      \
  do {                                                                             \
    CK_RV rv_ = (call);                                                            \
    if (rv_ != (CK_RV)(want)) {                                                    \
      fprintf(stderr, "%s:%d: %s returned 0x%lx, expected 0x%lx\n", __FILE__,      \
              __LINE__, #call, (unsigned long)rv_, (unsigned long)(want));         \
      exit(10);                                                                    \
    }                                                                              \
  } while (0)
#define CHECK(call) EXPECT_RV(CKR_OK, call)

/* dlopen()s a module the way most applications do and returns its 2.40 list. */
static inline CK_FUNCTION_LIST_PTR harness_load(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    exit(2);
  }
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  if (get == NULL) {
    fprintf(stderr, "no C_GetFunctionList in %s\n", path);
    exit(2);
  }
  CK_FUNCTION_LIST_PTR f = NULL;
  CHECK(get(&f));
  return f;
}

/* C_Initialize with CKF_OS_LOCKING_OK, the flag multi-threaded applications pass. */
static inline CK_RV harness_initialize(CK_FUNCTION_LIST_PTR f) {
  CK_C_INITIALIZE_ARGS args;
  memset(&args, 0, sizeof args);
  args.flags = CKF_OS_LOCKING_OK;
  return f->C_Initialize(&args);
}

/* The slot whose token carries `label` (32 bytes, blank padded, per section 3.2). */
static inline CK_SLOT_ID harness_find_slot(CK_FUNCTION_LIST_PTR f, const char *label) {
  CK_SLOT_ID slots[64];
  CK_ULONG n = 64;
  CHECK(f->C_GetSlotList(CK_TRUE, slots, &n));
  for (CK_ULONG i = 0; i < n; i++) {
    CK_TOKEN_INFO info;
    CHECK(f->C_GetTokenInfo(slots[i], &info));
    size_t len = sizeof info.label;
    while (len > 0 && info.label[len - 1] == ' ')
      len--;
    if (len == strlen(label) && memcmp(info.label, label, len) == 0)
      return slots[i];
  }
  fprintf(stderr, "no token labelled %s\n", label);
  exit(3);
}

#endif
