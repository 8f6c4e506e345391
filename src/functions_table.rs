//! The one declarative table of every PKCS#11 function Keywarden knows.
//!
//! A row is `Class [record op decide effect] C_Name(arguments);`:
//! - `Class`, the *policy class* (`functions::FnClass`);
//! - `record`, how the audit trail records it (`functions::RecordKind`);
//! - `op`, the policy operation it is decided as (`policy::Op`), `-` for none;
//! - `decide`, what the policy decides before forwarding (`functions::Decide`);
//! - `effect`, what it does to operations and sessions (`functions::Effect`):
//!   `Starts(Sign)` for an `*Init`, `Update(..)`/`Last(..)` with the operations a
//!   data call feeds (`A out B`: B is fed A's output), `EndsSession`, `EndsSlot`,
//!   `Cancels`, or `-`;
//! - the C arguments, as `pkcs11-sys` types.
//!
//! The table is an "x-macro": modules that need a per-function item pass their own
//! generator macro to [`for_each_pkcs11_function!`]. `ffi` generates the `extern
//! "C"` entry points and the 2.40/3.0 function lists from it, the backend loader
//! its function-pointer checks, `functions` the [`FunctionId`] and its column
//! lookups, the policy engine `Op::for_function`. Adding a function is a row here
//! (and, where its call shape is new, one handler in `ffi`).
//!
//! A row whose class is `Unclassified` is refused with `CKR_FUNCTION_NOT_SUPPORTED`
//! without reaching the backend: nothing passes through unexamined by accident. The
//! v3.0 message-based functions (PKCS#11 3.0 §5.19-5.22) are unclassified until the
//! policy engine learns to decide on per-message parameters.
//!
//! Order matters: within each version block the rows are in `CK_FUNCTION_LIST` /
//! `CK_FUNCTION_LIST_3_0` field order (PKCS#11 v2.40 §3.6, v3.0 §3.6).

/// Calls `$generator! { v2_40 { rows } v3_0 { rows } }` with every PKCS#11 function.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_pkcs11_function {
    ($generator:ident) => {
        $generator! {
        v2_40 {
            Library [Quiet - - -] C_Initialize(pInitArgs: CK_VOID_PTR);
            Library [Quiet - - -] C_Finalize(pReserved: CK_VOID_PTR);
            Library [Quiet - - -] C_GetInfo(pInfo: CK_INFO_PTR);
            Library [Quiet - - -] C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR);
            Slot [Quiet - - -] C_GetSlotList(tokenPresent: CK_BBOOL, pSlotList: CK_SLOT_ID_PTR, pulCount: CK_ULONG_PTR);
            Slot [Quiet - - -] C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR);
            Slot [Quiet - - -] C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR);
            Slot [Quiet - - -] C_GetMechanismList(slotID: CK_SLOT_ID, pMechanismList: CK_MECHANISM_TYPE_PTR, pulCount: CK_ULONG_PTR);
            Slot [Quiet - - -] C_GetMechanismInfo(slotID: CK_SLOT_ID, type_: CK_MECHANISM_TYPE, pInfo: CK_MECHANISM_INFO_PTR);
            Admin [Call InitToken Slot -] C_InitToken(slotID: CK_SLOT_ID, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG, pLabel: CK_UTF8CHAR_PTR);
            Admin [Call InitPin Session -] C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG);
            Admin [Call SetPin Session -] C_SetPIN(hSession: CK_SESSION_HANDLE, pOldPin: CK_UTF8CHAR_PTR, ulOldLen: CK_ULONG, pNewPin: CK_UTF8CHAR_PTR, ulNewLen: CK_ULONG);
            Session [Session - - -] C_OpenSession(slotID: CK_SLOT_ID, flags: CK_FLAGS, pApplication: CK_VOID_PTR, Notify: CK_NOTIFY, phSession: CK_SESSION_HANDLE_PTR);
            Session [Session - - EndsSession] C_CloseSession(hSession: CK_SESSION_HANDLE);
            Session [Session - - EndsSlot] C_CloseAllSessions(slotID: CK_SLOT_ID);
            Session [Quiet - - -] C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: CK_SESSION_INFO_PTR);
            Session [Call - - -] C_GetOperationState(hSession: CK_SESSION_HANDLE, pOperationState: CK_BYTE_PTR, pulOperationStateLen: CK_ULONG_PTR);
            Session [Call - - -] C_SetOperationState(hSession: CK_SESSION_HANDLE, pOperationState: CK_BYTE_PTR, ulOperationStateLen: CK_ULONG, hEncryptionKey: CK_OBJECT_HANDLE, hAuthenticationKey: CK_OBJECT_HANDLE);
            Login [Call - - -] C_Login(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG);
            Login [Call - - -] C_Logout(hSession: CK_SESSION_HANDLE);
            Object [Call Create Template -] C_CreateObject(hSession: CK_SESSION_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG, phObject: CK_OBJECT_HANDLE_PTR);
            Object [Call Copy Key -] C_CopyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG, phNewObject: CK_OBJECT_HANDLE_PTR);
            Object [Call Destroy Key -] C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE);
            Object [Quiet - - -] C_GetObjectSize(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pulSize: CK_ULONG_PTR);
            Object [Quiet - - -] C_GetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG);
            Object [Call SetAttribute Template -] C_SetAttributeValue(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG);
            Search [Quiet - - -] C_FindObjectsInit(hSession: CK_SESSION_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG);
            Search [Quiet - - -] C_FindObjects(hSession: CK_SESSION_HANDLE, phObject: CK_OBJECT_HANDLE_PTR, ulMaxObjectCount: CK_ULONG, pulObjectCount: CK_ULONG_PTR);
            Search [Quiet - - -] C_FindObjectsFinal(hSession: CK_SESSION_HANDLE);
            KeyUse [Init Encrypt Key Starts(Encrypt)] C_EncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(Encrypt)] C_Encrypt(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pEncryptedData: CK_BYTE_PTR, pulEncryptedDataLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Encrypt)] C_EncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR);
            OperationData [Data - - Last(Encrypt)] C_EncryptFinal(hSession: CK_SESSION_HANDLE, pLastEncryptedPart: CK_BYTE_PTR, pulLastEncryptedPartLen: CK_ULONG_PTR);
            KeyUse [Init Decrypt Key Starts(Decrypt)] C_DecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(Decrypt)] C_Decrypt(hSession: CK_SESSION_HANDLE, pEncryptedData: CK_BYTE_PTR, ulEncryptedDataLen: CK_ULONG, pData: CK_BYTE_PTR, pulDataLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Decrypt)] C_DecryptUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR);
            OperationData [Data - - Last(Decrypt)] C_DecryptFinal(hSession: CK_SESSION_HANDLE, pLastPart: CK_BYTE_PTR, pulLastPartLen: CK_ULONG_PTR);
            Digest [Init - - Starts(Digest)] C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR);
            OperationData [Data - - Last(Digest)] C_Digest(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pDigest: CK_BYTE_PTR, pulDigestLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Digest)] C_DigestUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG);
            KeyUse [Data DigestWithKey Key Update(Digest)] C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(Digest)] C_DigestFinal(hSession: CK_SESSION_HANDLE, pDigest: CK_BYTE_PTR, pulDigestLen: CK_ULONG_PTR);
            KeyUse [Init Sign Key Starts(Sign)] C_SignInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(Sign)] C_Sign(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Sign)] C_SignUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG);
            OperationData [Data - - Last(Sign)] C_SignFinal(hSession: CK_SESSION_HANDLE, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
            KeyUse [Init Sign Key Starts(SignRecover)] C_SignRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(SignRecover)] C_SignRecover(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
            KeyUse [Init Verify Key Starts(Verify)] C_VerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(Verify)] C_Verify(hSession: CK_SESSION_HANDLE, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG);
            OperationData [Data - - Update(Verify)] C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG);
            OperationData [Data - - Last(Verify)] C_VerifyFinal(hSession: CK_SESSION_HANDLE, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG);
            KeyUse [Init Verify Key Starts(VerifyRecover)] C_VerifyRecoverInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            OperationData [Data - - Last(VerifyRecover)] C_VerifyRecover(hSession: CK_SESSION_HANDLE, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG, pData: CK_BYTE_PTR, pulDataLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Digest Encrypt)] C_DigestEncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Decrypt out Digest)] C_DecryptDigestUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Sign Encrypt)] C_SignEncryptUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pEncryptedPart: CK_BYTE_PTR, pulEncryptedPartLen: CK_ULONG_PTR);
            OperationData [Data - - Update(Decrypt out Verify)] C_DecryptVerifyUpdate(hSession: CK_SESSION_HANDLE, pEncryptedPart: CK_BYTE_PTR, ulEncryptedPartLen: CK_ULONG, pPart: CK_BYTE_PTR, pulPartLen: CK_ULONG_PTR);
            KeyManagement [Call Generate Template -] C_GenerateKey(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, pTemplate: CK_ATTRIBUTE_PTR, ulCount: CK_ULONG, phKey: CK_OBJECT_HANDLE_PTR);
            KeyManagement [Call Generate Template -] C_GenerateKeyPair(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, pPublicKeyTemplate: CK_ATTRIBUTE_PTR, ulPublicKeyAttributeCount: CK_ULONG, pPrivateKeyTemplate: CK_ATTRIBUTE_PTR, ulPrivateKeyAttributeCount: CK_ULONG, phPublicKey: CK_OBJECT_HANDLE_PTR, phPrivateKey: CK_OBJECT_HANDLE_PTR);
            KeyManagement [Call Wrap Keys -] C_WrapKey(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hWrappingKey: CK_OBJECT_HANDLE, hKey: CK_OBJECT_HANDLE, pWrappedKey: CK_BYTE_PTR, pulWrappedKeyLen: CK_ULONG_PTR);
            KeyManagement [Call Unwrap Key -] C_UnwrapKey(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hUnwrappingKey: CK_OBJECT_HANDLE, pWrappedKey: CK_BYTE_PTR, ulWrappedKeyLen: CK_ULONG, pTemplate: CK_ATTRIBUTE_PTR, ulAttributeCount: CK_ULONG, phKey: CK_OBJECT_HANDLE_PTR);
            KeyManagement [Call Derive Key -] C_DeriveKey(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hBaseKey: CK_OBJECT_HANDLE, pTemplate: CK_ATTRIBUTE_PTR, ulAttributeCount: CK_ULONG, phKey: CK_OBJECT_HANDLE_PTR);
            Random [Quiet - - -] C_SeedRandom(hSession: CK_SESSION_HANDLE, pSeed: CK_BYTE_PTR, ulSeedLen: CK_ULONG);
            Random [Quiet - - -] C_GenerateRandom(hSession: CK_SESSION_HANDLE, RandomData: CK_BYTE_PTR, ulRandomLen: CK_ULONG);
            Session [Quiet - - -] C_GetFunctionStatus(hSession: CK_SESSION_HANDLE);
            Session [Quiet - - -] C_CancelFunction(hSession: CK_SESSION_HANDLE);
            Library [Quiet - - -] C_WaitForSlotEvent(flags: CK_FLAGS, pSlot: CK_SLOT_ID_PTR, pRserved: CK_VOID_PTR);
        }
        v3_0 {
            Library [Quiet - - -] C_GetInterfaceList(pInterfacesList: CK_INTERFACE_PTR, pulCount: CK_ULONG_PTR);
            Library [Quiet - - -] C_GetInterface(pInterfaceName: CK_UTF8CHAR_PTR, pVersion: CK_VERSION_PTR, ppInterface: CK_INTERFACE_PTR_PTR, flags: CK_FLAGS);
            Login [Call - - -] C_LoginUser(hSession: CK_SESSION_HANDLE, userType: CK_USER_TYPE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG, pUsername: CK_UTF8CHAR_PTR, ulUsernameLen: CK_ULONG);
            Session [Session - - Cancels] C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS);
            Unclassified [Quiet - - -] C_MessageEncryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            Unclassified [Quiet - - -] C_EncryptMessage(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pAssociatedData: CK_BYTE_PTR, ulAssociatedDataLen: CK_ULONG, pPlaintext: CK_BYTE_PTR, ulPlaintextLen: CK_ULONG, pCiphertext: CK_BYTE_PTR, pulCiphertextLen: CK_ULONG_PTR);
            Unclassified [Quiet - - -] C_EncryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pAssociatedData: CK_BYTE_PTR, ulAssociatedDataLen: CK_ULONG);
            Unclassified [Quiet - - -] C_EncryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pPlaintextPart: CK_BYTE_PTR, ulPlaintextPartLen: CK_ULONG, pCiphertextPart: CK_BYTE_PTR, pulCiphertextPartLen: CK_ULONG_PTR, flags: CK_FLAGS);
            Unclassified [Quiet - - -] C_MessageEncryptFinal(hSession: CK_SESSION_HANDLE);
            Unclassified [Quiet - - -] C_MessageDecryptInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            Unclassified [Quiet - - -] C_DecryptMessage(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pAssociatedData: CK_BYTE_PTR, ulAssociatedDataLen: CK_ULONG, pCiphertext: CK_BYTE_PTR, ulCiphertextLen: CK_ULONG, pPlaintext: CK_BYTE_PTR, pulPlaintextLen: CK_ULONG_PTR);
            Unclassified [Quiet - - -] C_DecryptMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pAssociatedData: CK_BYTE_PTR, ulAssociatedDataLen: CK_ULONG);
            Unclassified [Quiet - - -] C_DecryptMessageNext(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pCiphertextPart: CK_BYTE_PTR, ulCiphertextPartLen: CK_ULONG, pPlaintextPart: CK_BYTE_PTR, pulPlaintextPartLen: CK_ULONG_PTR, flags: CK_FLAGS);
            Unclassified [Quiet - - -] C_MessageDecryptFinal(hSession: CK_SESSION_HANDLE);
            Unclassified [Quiet - - -] C_MessageSignInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            Unclassified [Quiet - - -] C_SignMessage(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
            Unclassified [Quiet - - -] C_SignMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG);
            Unclassified [Quiet - - -] C_SignMessageNext(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, pulSignatureLen: CK_ULONG_PTR);
            Unclassified [Quiet - - -] C_MessageSignFinal(hSession: CK_SESSION_HANDLE);
            Unclassified [Quiet - - -] C_MessageVerifyInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE);
            Unclassified [Quiet - - -] C_VerifyMessage(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG);
            Unclassified [Quiet - - -] C_VerifyMessageBegin(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG);
            Unclassified [Quiet - - -] C_VerifyMessageNext(hSession: CK_SESSION_HANDLE, pParameter: CK_VOID_PTR, ulParameterLen: CK_ULONG, pData: CK_BYTE_PTR, ulDataLen: CK_ULONG, pSignature: CK_BYTE_PTR, ulSignatureLen: CK_ULONG);
            Unclassified [Quiet - - -] C_MessageVerifyFinal(hSession: CK_SESSION_HANDLE);
        }
        }
    };
}
