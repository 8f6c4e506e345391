/*
 * Loads a module and calls C_Initialize(NULL) once, for tests/abi_lifecycle.rs:
 *
 *   init_probe MODULE
 *
 * Prints "C_Initialize=0x<rv>" on stdout and finalises on success. The module's own
 * stderr (Keywarden's one-line refusal) is left untouched for the test to read. Run in
 * a child process so that a refused initialisation leaves the test process clean.
 */
#include "harness.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODULE\n", argv[0]);
    return 2;
  }
  CK_FUNCTION_LIST_PTR f = harness_load(argv[1]);
  CK_RV rv = f->C_Initialize(NULL);
  printf("C_Initialize=0x%lx\n", (unsigned long)rv);
  if (rv == CKR_OK)
    CHECK(f->C_Finalize(NULL));
  return 0;
}
