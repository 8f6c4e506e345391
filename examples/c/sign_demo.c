/*
 * sign_demo: sign and verify with an EC key through Keywarden, from C.
 *
 *   sign_demo TOKEN_LABEL USER_PIN [MODULE]
 *
 * MODULE defaults to "libkeywarden.so" (found by the dynamic loader's search path).
 * Built with -DSIGN_DEMO_LINKED the program links against libkeywarden.so instead of
 * dlopen()ing it, and takes no MODULE. Keywarden reads its configuration from
 * KEYWARDEN_CONF at C_Initialize (see include/keywarden.h and README.md here).
 *
 * Steps: load the module, initialise it, find the token by label, log in, find the
 * P-256 key pair labelled "sign-demo" or generate it (as token objects, so the next
 * run finds it), hash a message on the token, sign the hash with ECDSA, verify the
 * signature, and check that a corrupted signature is rejected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIGN_DEMO_LINKED
#include <dlfcn.h>
#endif

#include "keywarden.h"

#define KEY_LABEL "sign-demo"

/* Stops the demo with the name of the call that failed and its CK_RV. */
#define CHECK(call)                                                                \
  do {                                                                             \
    CK_RV rv_ = (call);                                                            \
    if (rv_ != CKR_OK) {                                                           \
      fprintf(stderr, "sign_demo: %s failed: CK_RV 0x%lx\n", #call,               \
              (unsigned long)rv_);                                                 \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

/* The function list and version, by dlopen() or by linking. */
static CK_FUNCTION_LIST_PTR load_module(const char *path, const char **version) {
  CK_FUNCTION_LIST_PTR f = NULL;
#ifdef SIGN_DEMO_LINKED
  (void)path;
  *version = keywarden_version();
  CHECK(C_GetFunctionList(&f));
#else
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "sign_demo: cannot load %s: %s\n", path, dlerror());
    exit(1);
  }
  /* The types come from the PKCS#11 header, the declarations from keywarden.h. */
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  const char *(*version_fn)(void) = (const char *(*)(void))dlsym(lib, "keywarden_version");
  if (get == NULL || version_fn == NULL) {
    fprintf(stderr, "sign_demo: %s is not Keywarden\n", path);
    exit(1);
  }
  *version = version_fn();
  CHECK(get(&f));
#endif
  return f;
}

/* Slot of the token whose 32-byte, blank-padded label is `label`. */
static int find_slot(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *slot) {
  CK_ULONG n = 0;
  CHECK(f->C_GetSlotList(CK_TRUE, NULL, &n)); /* size query (PKCS#11 section 5.2) */
  CK_SLOT_ID *slots = calloc(n ? n : 1, sizeof *slots);
  if (slots == NULL)
    exit(1);
  CHECK(f->C_GetSlotList(CK_TRUE, slots, &n));
  int found = 0;
  for (CK_ULONG i = 0; i < n && !found; i++) {
    CK_TOKEN_INFO info;
    CHECK(f->C_GetTokenInfo(slots[i], &info));
    size_t len = sizeof info.label;
    while (len > 0 && info.label[len - 1] == ' ')
      len--;
    if (len == strlen(label) && memcmp(info.label, label, len) == 0) {
      *slot = slots[i];
      found = 1;
    }
  }
  free(slots);
  return found;
}

/* The first object of `class` labelled KEY_LABEL, or CK_INVALID_HANDLE. */
static CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                                 CK_OBJECT_CLASS class) {
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &class, sizeof class},
                      {CKA_LABEL, KEY_LABEL, sizeof KEY_LABEL - 1}};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG n = 0;
  CHECK(f->C_FindObjectsInit(s, t, 2));
  CHECK(f->C_FindObjects(s, &h, 1, &n));
  CHECK(f->C_FindObjectsFinal(s));
  return n == 1 ? h : CK_INVALID_HANDLE;
}

static void generate_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) {
  /* DER of the OID 1.2.840.10045.3.1.7 (NIST P-256), as CKA_EC_PARAMS wants it. */
  static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  static char label[] = KEY_LABEL;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256},
                        {CKA_TOKEN, &yes, sizeof yes},
                        {CKA_VERIFY, &yes, sizeof yes},
                        {CKA_LABEL, label, sizeof label - 1}};
  CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof yes},
                         {CKA_PRIVATE, &yes, sizeof yes},
                         {CKA_SENSITIVE, &yes, sizeof yes},
                         {CKA_SIGN, &yes, sizeof yes},
                         {CKA_LABEL, label, sizeof label - 1}};
  CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
  CK_OBJECT_HANDLE hpub, hpriv;
  CHECK(f->C_GenerateKeyPair(s, &gen, pub, 4, priv, 5, &hpub, &hpriv));
}

int main(int argc, char **argv) {
#ifdef SIGN_DEMO_LINKED
  if (argc != 3) {
    fprintf(stderr, "usage: %s TOKEN_LABEL USER_PIN\n", argv[0]);
    return 2;
  }
#else
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s TOKEN_LABEL USER_PIN [MODULE]\n", argv[0]);
    return 2;
  }
#endif
  const char *label = argv[1], *pin = argv[2];
  const char *version = NULL;
  CK_FUNCTION_LIST_PTR f = load_module(argc == 4 ? argv[3] : "libkeywarden.so", &version);
  printf("keywarden %s\n", version);

  /* CKF_OS_LOCKING_OK: this program may call from several threads (section 5.4). */
  CK_C_INITIALIZE_ARGS init;
  memset(&init, 0, sizeof init);
  init.flags = CKF_OS_LOCKING_OK;
  CHECK(f->C_Initialize(&init));

  CK_SLOT_ID slot;
  if (!find_slot(f, label, &slot)) {
    fprintf(stderr, "sign_demo: no token labelled '%s'\n", label);
    return 1;
  }
  printf("token '%s' found\n", label);

  CK_SESSION_HANDLE s;
  CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
  CHECK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
  printf("logged in\n");

  CK_OBJECT_HANDLE priv = find_key(f, s, CKO_PRIVATE_KEY);
  if (priv == CK_INVALID_HANDLE) {
    generate_key(f, s);
    priv = find_key(f, s, CKO_PRIVATE_KEY);
    printf("generated P-256 key pair '%s'\n", KEY_LABEL);
  } else {
    printf("found P-256 key pair '%s'\n", KEY_LABEL);
  }
  CK_OBJECT_HANDLE pub = find_key(f, s, CKO_PUBLIC_KEY);
  if (priv == CK_INVALID_HANDLE || pub == CK_INVALID_HANDLE) {
    fprintf(stderr, "sign_demo: key pair '%s' incomplete\n", KEY_LABEL);
    return 1;
  }

  /* Hash on the token, then sign the hash with raw ECDSA. */
  static char message[] = "hello from keywarden";
  CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
  CK_BYTE digest[32];
  CK_ULONG digest_len = sizeof digest;
  CHECK(f->C_DigestInit(s, &sha256));
  CHECK(f->C_Digest(s, (CK_BYTE_PTR)message, sizeof message - 1, digest, &digest_len));

  CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
  CK_ULONG sig_len = 0;
  CHECK(f->C_SignInit(s, &ecdsa, priv));
  CHECK(f->C_Sign(s, digest, digest_len, NULL, &sig_len)); /* size query */
  CK_BYTE *sig = malloc(sig_len);
  if (sig == NULL)
    return 1;
  CHECK(f->C_Sign(s, digest, digest_len, sig, &sig_len));
  printf("signature: %lu bytes\n", (unsigned long)sig_len);

  CHECK(f->C_VerifyInit(s, &ecdsa, pub));
  CHECK(f->C_Verify(s, digest, digest_len, sig, sig_len));
  printf("verify: OK\n");

  sig[sig_len / 2] ^= 0x01;
  CHECK(f->C_VerifyInit(s, &ecdsa, pub));
  CK_RV rv = f->C_Verify(s, digest, digest_len, sig, sig_len);
  if (rv != CKR_SIGNATURE_INVALID) {
    fprintf(stderr, "sign_demo: corrupted signature gave 0x%lx\n", (unsigned long)rv);
    return 1;
  }
  printf("corrupted signature: CKR_SIGNATURE_INVALID\n");
  free(sig);

  CHECK(f->C_Logout(s));
  CHECK(f->C_CloseSession(s));
  CHECK(f->C_Finalize(NULL));
  printf("sign_demo: OK\n");
  return 0;
}
