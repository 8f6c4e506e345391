/*
 * A forking PKCS#11 application, run by tests/fork.rs:
 *
 *   fork_client MODULE TOKEN_LABEL USER_PIN
 *
 * The parent initialises, logs in, creates a P-256 token key and signs; then forks.
 * The child first calls the library without re-initialising and prints the codes
 * (the test expects CKR_CRYPTOKI_NOT_INITIALIZED from Keywarden, as the v2.40 base
 * specification asks of a child that has not re-initialised), then calls
 * C_Initialize again, logs in and signs with the same key. The parent, meanwhile and
 * after the child exits, keeps using its original session. Each step prints one
 * "who: step: result" line; the exit status is 0 only if every step succeeded.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const CK_BYTE P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static char KEY_LABEL[] = "fork-ec";

/* Finds the key of `class` labelled KEY_LABEL. */
static CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                                 CK_OBJECT_CLASS class) {
  CK_ATTRIBUTE t[] = {{CKA_CLASS, &class, sizeof class},
                      {CKA_LABEL, KEY_LABEL, strlen(KEY_LABEL)}};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG n = 0;
  CHECK(f->C_FindObjectsInit(s, t, 2));
  CHECK(f->C_FindObjects(s, &h, 1, &n));
  CHECK(f->C_FindObjectsFinal(s));
  if (n != 1) {
    fprintf(stderr, "key %s not found\n", KEY_LABEL);
    exit(4);
  }
  return h;
}

/* Signs a fixed digest with ECDSA and verifies it with the public key. */
static void sign_and_verify(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) {
  CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
  CK_BYTE digest[32], sig[64];
  CK_ULONG sig_len = sizeof sig;
  memset(digest, 0x5a, sizeof digest);
  CHECK(f->C_SignInit(s, &ecdsa, find_key(f, s, CKO_PRIVATE_KEY)));
  CHECK(f->C_Sign(s, digest, sizeof digest, sig, &sig_len));
  CHECK(f->C_VerifyInit(s, &ecdsa, find_key(f, s, CKO_PUBLIC_KEY)));
  CHECK(f->C_Verify(s, digest, sizeof digest, sig, sig_len));
}

static CK_SESSION_HANDLE open_and_login(CK_FUNCTION_LIST_PTR f, const char *label,
                                        const char *pin) {
  CK_SESSION_HANDLE s;
  CHECK(f->C_OpenSession(harness_find_slot(f, label), CKF_SERIAL_SESSION | CKF_RW_SESSION,
                         NULL, NULL, &s));
  /* Login state is per application: a child that inherited it is already logged in. */
  CK_RV rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
  if (rv != CKR_USER_ALREADY_LOGGED_IN)
    CHECK(rv);
  return s;
}

static void make_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s) {
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, (void *)P256, sizeof P256},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_VERIFY, &yes, 1},
                        {CKA_LABEL, KEY_LABEL, strlen(KEY_LABEL)}};
  CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_PRIVATE, &yes, 1},
                         {CKA_SIGN, &yes, 1},
                         {CKA_LABEL, KEY_LABEL, strlen(KEY_LABEL)}};
  CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
  CK_OBJECT_HANDLE hpub, hpriv;
  CHECK(f->C_GenerateKeyPair(s, &gen, pub, 4, priv, 4, &hpub, &hpriv));
}

static int child(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE inherited, const char *label,
                 const char *pin) {
  CK_SESSION_INFO info;
  CK_ULONG n = 0;
  /* Before C_Initialize: the test asserts these codes (the parent's state belongs to
     the parent; a module that is not fork-aware answers CKR_OK here). */
  CK_RV a = f->C_GetSessionInfo(inherited, &info);
  CK_RV b = f->C_GetSlotList(CK_TRUE, NULL, &n);
  CK_RV c = f->C_Finalize(NULL);
  printf("child: before C_Initialize: C_GetSessionInfo=0x%lx C_GetSlotList=0x%lx "
         "C_Finalize=0x%lx\n",
         (unsigned long)a, (unsigned long)b, (unsigned long)c);
  CK_RV rv = harness_initialize(f);
  printf("child: C_Initialize=0x%lx\n", (unsigned long)rv);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
    return 20;
  /* Whether the parent's session survives depends on the token's own fork handling
     (SoftHSM 2.6 has none); reported, not judged. */
  rv = f->C_GetSessionInfo(inherited, &info);
  printf("child: inherited session after C_Initialize: 0x%lx\n", (unsigned long)rv);
  CK_SESSION_HANDLE s = open_and_login(f, label, pin);
  sign_and_verify(f, s);
  printf("child: login and sign: CKR_OK\n");
  CHECK(f->C_Finalize(NULL));
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODULE TOKEN_LABEL USER_PIN\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  CK_FUNCTION_LIST_PTR f = harness_load(argv[1]);
  CHECK(harness_initialize(f));
  CK_SESSION_HANDLE s = open_and_login(f, argv[2], argv[3]);
  make_key(f, s);
  sign_and_verify(f, s);
  printf("parent: sign before fork: CKR_OK\n");

  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 5;
  }
  if (pid == 0)
    _exit(child(f, s, argv[2], argv[3]));

  /* The parent goes on while the child runs, and after it has finished. */
  sign_and_verify(f, s);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    perror("waitpid");
    return 6;
  }
  printf("parent: child exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  sign_and_verify(f, s);
  printf("parent: sign after fork: CKR_OK\n");
  CHECK(f->C_Finalize(NULL));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 7;
}
