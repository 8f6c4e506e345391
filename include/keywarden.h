/*
 * keywarden.h: the C interface of libkeywarden.so, a PKCS#11 module that forwards
 * every call to a real token and puts key-management policy, lifecycle and audit in
 * front of it.
 *
 * Keywarden is an ordinary PKCS#11 module: an application loads it (dlopen, or links
 * -lkeywarden) and drives it through the standard function list. This header adds
 * nothing to the PKCS#11 API; it declares the four symbols the library exports and
 * writes down the behaviour Keywarden itself defines.
 *
 * ---------------------------------------------------------------------------------
 * PKCS#11 types
 * ---------------------------------------------------------------------------------
 * The standard types come from a PKCS#11 header, in this order of preference:
 *   1. KEYWARDEN_PKCS11_HEADER, if defined (e.g. -DKEYWARDEN_PKCS11_HEADER='"pkcs11.h"'
 *      for the OASIS headers). The five Unix platform macros the OASIS headers expect
 *      (CK_PTR, CK_DECLARE_FUNCTION, ...) are defined here first unless you did.
 *   2. p11-kit's self-contained <p11-kit/pkcs11.h> (Debian/Ubuntu: libp11-kit-dev;
 *      found with `pkg-config --cflags p11-kit-1`, or as <p11-kit-1/p11-kit/pkcs11.h>
 *      from the default include path).
 * p11-kit's header stops at PKCS#11 v2.40; the v3.0 CK_INTERFACE type is then
 * declared below, since C_GetInterface and C_GetInterfaceList need it. The v3.0
 * function list (CK_FUNCTION_LIST_3_0) is not: use an OASIS v3.x header for it.
 *
 * ---------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------
 * C_Initialize reads the TOML file named by the environment variable KEYWARDEN_CONF
 * (default /etc/keywarden/keywarden.toml), which names the real module
 * ([backend] module = "/usr/lib/softhsm/libsofthsm2.so"). `keywarden init` writes one.
 * A missing, unreadable or invalid file is a failed C_Initialize: there is no default
 * backend to fall back to. KEYWARDEN_LOG sets the log level on stderr (default warn).
 *
 * ---------------------------------------------------------------------------------
 * Conventions (see docs/abi-conventions.md)
 * ---------------------------------------------------------------------------------
 * - Vendor-defined constants: none yet. Keywarden defines no CKR_, CKA_, CKM_ or CKF_
 *   vendor values; every code an application sees is a standard one.
 * - Return codes from the real token reach the application unchanged. The codes
 *   Keywarden returns on its own account are:
 *     CKR_ARGUMENTS_BAD               NULL where a pointer is required (info
 *                                     structures, handle and length outputs,
 *                                     mechanisms), NULL buffer with a non-zero length,
 *                                     misaligned pointer, non-NULL pReserved, some but
 *                                     not all mutex functions in C_Initialize, no
 *                                     interface matching a C_GetInterface request.
 *     CKR_CANT_LOCK                   C_Initialize with the four mutex functions and
 *                                     without CKF_OS_LOCKING_OK (Keywarden always
 *                                     locks with OS primitives).
 *     CKR_CRYPTOKI_ALREADY_INITIALIZED a second C_Initialize.
 *     CKR_CRYPTOKI_NOT_INITIALIZED    any call before C_Initialize, after C_Finalize,
 *                                     or in a forked child before it calls
 *                                     C_Initialize again.
 *     CKR_FUNCTION_NOT_SUPPORTED      a function the real token lacks, and the v3.0
 *                                     message-based functions (not yet classified by
 *                                     the policy engine).
 *     CKR_GENERAL_ERROR               C_Initialize could not start: configuration
 *                                     missing or invalid, backend not loadable,
 *                                     backend is Keywarden itself (by any name), or
 *                                     the backend's own C_Initialize failed. One line
 *                                     "keywarden: C_Initialize refused: <reason>" goes
 *                                     to stderr and syslog. Also: an internal fault
 *                                     caught at the boundary (Keywarden never aborts
 *                                     the host process).
 * - A NULL buffer with a length of 0 is passed to the token as NULL with length 0, so
 *   the token answers exactly as it would directly.
 * - Variable-length output follows PKCS#11 v2.40 section 5.2 (size query with a NULL
 *   buffer, CKR_BUFFER_TOO_SMALL with the needed length, the operation still active).
 * - Threads: calls from any number of threads run concurrently; no Keywarden lock is
 *   held while the token works. CKF_OS_LOCKING_OK is the recommended flag.
 * - fork(): the child must call C_Initialize before anything else (v2.40 base
 *   specification, general overview, "Applications and processes"); until then
 *   every call returns CKR_CRYPTOKI_NOT_INITIALIZED. The parent is unaffected.
 * - Interfaces: "PKCS 11" version 2.40 always; version 3.0 as well (and then as the
 *   default) when the real token offers 3.0.
 * - Session and object handles are the token's own.
 * - Keywarden's C_Finalize finalises the real module only if Keywarden's C_Initialize
 *   initialised it; a token the application initialised directly stays initialised.
 */
#ifndef KEYWARDEN_H
#define KEYWARDEN_H

#if defined(KEYWARDEN_PKCS11_HEADER)
/* The platform macros of the OASIS headers, for Unix-like systems (their section 2). */
#ifndef CK_PTR
#define CK_PTR *
#endif
#ifndef CK_DECLARE_FUNCTION
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#endif
#ifndef CK_DECLARE_FUNCTION_POINTER
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType(*name)
#endif
#ifndef CK_CALLBACK_FUNCTION
#define CK_CALLBACK_FUNCTION(returnType, name) returnType(*name)
#endif
#ifndef NULL_PTR
#define NULL_PTR 0
#endif
#include KEYWARDEN_PKCS11_HEADER
#elif defined(__has_include)
#if __has_include(<p11-kit/pkcs11.h>)
#include <p11-kit/pkcs11.h>
#elif __has_include(<p11-kit-1/p11-kit/pkcs11.h>)
#include <p11-kit-1/p11-kit/pkcs11.h>
#else
#error "keywarden.h needs a PKCS#11 header: install libp11-kit-dev or define KEYWARDEN_PKCS11_HEADER"
#endif
#else
#include <p11-kit/pkcs11.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* PKCS#11 v3.0 section 3.6: the interface type, absent from v2.40 headers. */
#if !defined(CRYPTOKI_VERSION_MAJOR) || CRYPTOKI_VERSION_MAJOR < 3
#ifndef KEYWARDEN_DECLARES_CK_INTERFACE
#define KEYWARDEN_DECLARES_CK_INTERFACE 1
typedef struct CK_INTERFACE {
  CK_UTF8CHAR *pInterfaceName; /* "PKCS 11" */
  void *pFunctionList;         /* CK_FUNCTION_LIST * for version 2.40 */
  CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#endif
#endif

/*
 * PKCS#11 v2.40 section 5.4. Callable before C_Initialize. *ppFunctionList receives
 * Keywarden's static v2.40 function list (version 2.40, every entry non-NULL).
 * CKR_ARGUMENTS_BAD if ppFunctionList is NULL.
 */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);

/*
 * PKCS#11 v3.0 section 5.4. Callable before C_Initialize. Lists "PKCS 11" 2.40, and
 * 3.0 first when the configured token offers 3.0 (section 5.2 size query applies).
 */
CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);

/*
 * PKCS#11 v3.0 section 5.4. pInterfaceName NULL or "PKCS 11"; pVersion NULL for the
 * default (the newest offered); flags must be a subset of the interface's flags (0:
 * Keywarden's interfaces claim no flags). No match: CKR_ARGUMENTS_BAD.
 */
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

/*
 * The Keywarden version ("0.1.0"), a static NUL-terminated string; callable at any
 * time. Its presence is also how Keywarden recognises itself: a backend module that
 * exports keywarden_version is refused.
 */
const char *keywarden_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARDEN_H */
