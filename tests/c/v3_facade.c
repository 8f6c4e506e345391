/*
 * A recording PKCS#11 v3.0 front for a v2.40 module, used as Keywarden's backend by
 * tests/abi_hygiene.rs (built with -shared -fPIC).
 *
 * - It offers the "PKCS 11" 3.0 interface (and 2.40) over SoftHSM 2.6, which offers
 *   only 2.40, so that Keywarden offers its 3.0 function list too.
 * - Its 3.0 entries stand for a 3.0 token that lacks some functions: C_LoginUser is
 *   NULL; C_SessionCancel, C_MessageEncryptInit and C_MessageEncryptFinal are stubs
 *   that answer CKR_OK and count their calls, so the test can tell a function
 *   Keywarden forwards from one it refuses without asking the token.
 * - C_DigestUpdate, C_GenerateRandom and C_Sign are wrapped to record how they were
 *   called (count, data pointer, length) before going on to the wrapped module;
 *   C_Initialize to record the locking arguments it was given.
 * - C_GenerateKeyPair is wrapped to publish when a call is inside the wrapped module
 *   (tests/threads.rs: other calls must not wait for it).
 *
 * The wrapped module is $FACADE_TARGET, else /usr/lib/softhsm/libsofthsm2.so.
 */
#include <pthread.h>

#include "harness.h"

/* How a wrapped function was last called; read by the test through dlsym. */
struct facade_record {
  unsigned long calls;
  const void *last_ptr;
  unsigned long last_len;
};
struct facade_record facade_digest_update, facade_generate_random, facade_sign,
    facade_session_cancel, facade_message;
/* C_Initialize: last_ptr holds how many mutex functions were supplied (0-4),
   last_len the flags. */
struct facade_record facade_initialize;

/* While a C_GenerateKeyPair runs inside the wrapped module: how many have started,
   and how many are inside right now (atomics, read by the test from another thread). */
unsigned long facade_keygen_started, facade_keygen_inside;

/* CK_FUNCTION_LIST_3_0 (v3.0 section 3.6): the 2.40 list, then 24 more entries. */
struct list_3_0 {
  CK_FUNCTION_LIST base;
  CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
  CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
  void *C_LoginUser;
  CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
  CK_RV (*C_MessageEncryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
  void *C_EncryptMessage, *C_EncryptMessageBegin, *C_EncryptMessageNext;
  CK_RV (*C_MessageEncryptFinal)(CK_SESSION_HANDLE);
  void *rest[15];
};
_Static_assert(sizeof(struct list_3_0) == sizeof(CK_FUNCTION_LIST) + 24 * sizeof(void *),
               "CK_FUNCTION_LIST_3_0 layout");

static CK_FUNCTION_LIST wrapped; /* the real module's list, as it gave it */
static CK_FUNCTION_LIST v2;      /* ours: the real one with the recording wrappers */
static struct list_3_0 v3;
static CK_INTERFACE interfaces[2];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void record(struct facade_record *r, const void *p, CK_ULONG len) {
  __atomic_fetch_add(&r->calls, 1, __ATOMIC_SEQ_CST);
  r->last_ptr = p;
  r->last_len = len;
}

static CK_RV rec_Initialize(CK_VOID_PTR p) {
  CK_C_INITIALIZE_ARGS *a = p;
  unsigned long mutexes = 0, flags = 0;
  if (a != NULL) {
    mutexes = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
              (a->UnlockMutex != NULL);
    flags = a->flags;
  }
  record(&facade_initialize, (const void *)mutexes, flags);
  return wrapped.C_Initialize(p);
}
static CK_RV rec_DigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR p, CK_ULONG n) {
  record(&facade_digest_update, p, n);
  return wrapped.C_DigestUpdate(s, p, n);
}
static CK_RV rec_GenerateRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR p, CK_ULONG n) {
  record(&facade_generate_random, p, n);
  return wrapped.C_GenerateRandom(s, p, n);
}
static CK_RV rec_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR sig,
                      CK_ULONG_PTR sig_len) {
  record(&facade_sign, sig_len, n);
  return wrapped.C_Sign(s, d, n, sig, sig_len);
}
static CK_RV probe_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
                                   CK_ATTRIBUTE_PTR pub, CK_ULONG npub, CK_ATTRIBUTE_PTR priv,
                                   CK_ULONG npriv, CK_OBJECT_HANDLE_PTR hpub,
                                   CK_OBJECT_HANDLE_PTR hpriv) {
  __atomic_fetch_add(&facade_keygen_started, 1, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&facade_keygen_inside, 1, __ATOMIC_SEQ_CST);
  CK_RV rv = wrapped.C_GenerateKeyPair(s, m, pub, npub, priv, npriv, hpub, hpriv);
  __atomic_fetch_sub(&facade_keygen_inside, 1, __ATOMIC_SEQ_CST);
  return rv;
}
static CK_RV stub_SessionCancel(CK_SESSION_HANDLE s, CK_FLAGS f) {
  (void)s;
  record(&facade_session_cancel, NULL, f);
  return CKR_OK;
}
static CK_RV stub_MessageEncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
                                     CK_OBJECT_HANDLE k) {
  (void)s;
  record(&facade_message, m, k);
  return CKR_OK;
}
static CK_RV stub_MessageEncryptFinal(CK_SESSION_HANDLE s) {
  record(&facade_message, NULL, s);
  return CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp);

static void load(void) {
  const char *target = getenv("FACADE_TARGET");
  CK_FUNCTION_LIST_PTR real = harness_load(target ? target : "/usr/lib/softhsm/libsofthsm2.so");
  wrapped = *real;
  v2 = *real;
  v2.version.major = 2;
  v2.version.minor = 40;
  v2.C_GetFunctionList = C_GetFunctionList;
  v2.C_Initialize = rec_Initialize;
  v2.C_DigestUpdate = rec_DigestUpdate;
  v2.C_GenerateRandom = rec_GenerateRandom;
  v2.C_Sign = rec_Sign;
  v2.C_GenerateKeyPair = probe_GenerateKeyPair;
  memset(&v3, 0, sizeof v3);
  v3.base = v2;
  v3.base.version.major = 3;
  v3.base.version.minor = 0;
  v3.C_GetInterfaceList = C_GetInterfaceList;
  v3.C_GetInterface = C_GetInterface;
  v3.C_SessionCancel = stub_SessionCancel;
  v3.C_MessageEncryptInit = stub_MessageEncryptInit;
  v3.C_MessageEncryptFinal = stub_MessageEncryptFinal;
  static CK_UTF8CHAR name[] = "PKCS 11";
  interfaces[0] = (CK_INTERFACE){name, &v3, 0};
  interfaces[1] = (CK_INTERFACE){name, &v2, 0};
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp) {
  if (pp == NULL)
    return CKR_ARGUMENTS_BAD;
  pthread_once(&once, load);
  *pp = &v2;
  return CKR_OK;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count) {
  if (count == NULL)
    return CKR_ARGUMENTS_BAD;
  pthread_once(&once, load);
  if (list == NULL) {
    *count = 2;
    return CKR_OK;
  }
  if (*count < 2) {
    *count = 2;
    return CKR_BUFFER_TOO_SMALL;
  }
  memcpy(list, interfaces, sizeof interfaces);
  *count = 2;
  return CKR_OK;
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR pp,
                     CK_FLAGS flags) {
  if (pp == NULL)
    return CKR_ARGUMENTS_BAD;
  pthread_once(&once, load);
  if ((name != NULL && strcmp((const char *)name, "PKCS 11") != 0) || flags != 0)
    return CKR_ARGUMENTS_BAD;
  if (version == NULL || (version->major == 3 && version->minor == 0))
    *pp = &interfaces[0];
  else if (version->major == 2 && version->minor == 40)
    *pp = &interfaces[1];
  else
    return CKR_ARGUMENTS_BAD;
  return CKR_OK;
}
