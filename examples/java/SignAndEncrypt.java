import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.util.Arrays;
import java.util.Collections;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * Uses keys on a PKCS#11 token through Java's SunPKCS11 provider:
 * SHA256withECDSA signing with a token private key (verified in software and on the
 * token), and AES/GCM/NoPadding encryption and decryption with a token AES key.
 *
 * <pre>java SignAndEncrypt P11_CFG PIN EC_ALIAS AES_ALIAS</pre>
 *
 * EC_ALIAS must be a private key with a certificate (keytool -genkeypair makes both);
 * AES_ALIAS a secret key (keytool -genseckey). Prints one "ok:" line per check and
 * exits 1 on the first failed check.
 */
public final class SignAndEncrypt {
    private static void check(boolean condition, String what) {
        if (!condition) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
        System.out.println("  ok: " + what);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: java SignAndEncrypt P11_CFG PIN EC_ALIAS AES_ALIAS");
            System.exit(2);
        }
        String cfg = args[0];
        char[] pin = args[1].toCharArray();
        String ecAlias = args[2];
        String aesAlias = args[3];

        Provider p = Security.getProvider("SunPKCS11").configure(cfg);
        System.out.println("provider: " + p.getName());
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, pin);
        check(ks.isKeyEntry(ecAlias), "keystore has private key entry '" + ecAlias + "'");
        check(ks.isKeyEntry(aesAlias), "keystore has key entry '" + aesAlias + "'");
        System.out.println("  aliases: " + String.join(", ", Collections.list(ks.aliases())));

        // --- ECDSA: the private key never leaves the token. ---
        PrivateKey priv = (PrivateKey) ks.getKey(ecAlias, null);
        Certificate cert = ks.getCertificate(ecAlias);
        check(priv != null && "EC".equals(priv.getAlgorithm()), "EC private key handle from the token");
        check(cert != null, "certificate for '" + ecAlias + "'");
        PublicKey pub = cert.getPublicKey();
        byte[] data = "Keywarden: data signed on the token".getBytes(StandardCharsets.UTF_8);

        Signature signer = Signature.getInstance("SHA256withECDSA", p);
        signer.initSign(priv);
        signer.update(data);
        byte[] sig = signer.sign();
        check(sig.length > 0, "SHA256withECDSA signature made on the token");

        Signature soft = Signature.getInstance("SHA256withECDSA", "SunEC");
        soft.initVerify(pub);
        soft.update(data);
        check(soft.verify(sig), "signature verifies in software (SunEC) with the certificate's key");

        Signature onToken = Signature.getInstance("SHA256withECDSA", p);
        onToken.initVerify(pub);
        onToken.update(data);
        check(onToken.verify(sig), "signature verifies on the token");

        byte[] tampered = data.clone();
        tampered[0] ^= 1;
        soft.initVerify(pub);
        soft.update(tampered);
        check(!soft.verify(sig), "signature does not verify for altered data");

        // --- AES-GCM with a secret key stored on the token. ---
        SecretKey aes = (SecretKey) ks.getKey(aesAlias, null);
        check(aes != null && "AES".equals(aes.getAlgorithm()), "AES key handle from the token");
        byte[] plain = "Keywarden: secret message for AES-GCM".getBytes(StandardCharsets.UTF_8);
        byte[] aad = "header".getBytes(StandardCharsets.UTF_8);
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);

        Cipher enc = Cipher.getInstance("AES/GCM/NoPadding", p);
        enc.init(Cipher.ENCRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        enc.updateAAD(aad);
        byte[] ct = enc.doFinal(plain);
        check(ct.length == plain.length + 16, "AES/GCM/NoPadding encrypt on the token (ciphertext + 16-byte tag)");
        check(!Arrays.equals(Arrays.copyOf(ct, plain.length), plain), "ciphertext differs from plaintext");

        Cipher dec = Cipher.getInstance("AES/GCM/NoPadding", p);
        dec.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        dec.updateAAD(aad);
        check(Arrays.equals(dec.doFinal(ct), plain), "AES/GCM/NoPadding decrypt on the token gives the plaintext back");

        byte[] bad = ct.clone();
        bad[0] ^= 1;
        dec.init(Cipher.DECRYPT_MODE, aes, new GCMParameterSpec(128, iv));
        dec.updateAAD(aad);
        boolean rejected;
        try {
            dec.doFinal(bad);
            rejected = false;
        } catch (AEADBadTagException e) {
            rejected = true;
        }
        check(rejected, "altered ciphertext is rejected (AEADBadTagException)");

        System.out.println("all checks passed");
    }
}
