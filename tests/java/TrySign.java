import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;

/**
 * Tries one signature per argument with token keys through SunPKCS11 and reports
 * how each ended, for tests/policy_enforce_java.rs.
 *
 * <pre>java TrySign P11_CFG PIN ALIAS:ALGORITHM...</pre>
 *
 * Prints one line per attempt: "signed ALIAS ALGORITHM" when the signature was made
 * and verifies in software with the alias's certificate, else "refused ALIAS
 * ALGORITHM: " and the messages of the exception and its causes (SunPKCS11's
 * PKCS11Exception carries the CKR name). Exits 0 when every attempt ran to one of
 * those ends, 1 when a signature does not verify or a key is missing.
 */
public final class TrySign {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: java TrySign P11_CFG PIN ALIAS:ALGORITHM...");
            System.exit(2);
        }
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, args[1].toCharArray());
        byte[] data = "Keywarden: signed through SunPKCS11".getBytes(StandardCharsets.UTF_8);
        int status = 0;
        for (int i = 2; i < args.length; i++) {
            String[] item = args[i].split(":", 2);
            String alias = item[0];
            String alg = item[1];
            PrivateKey key = (PrivateKey) ks.getKey(alias, null);
            Certificate cert = ks.getCertificate(alias);
            if (key == null || cert == null) {
                System.out.println("missing " + alias);
                status = 1;
                continue;
            }
            byte[] sig;
            try {
                Signature signer = Signature.getInstance(alg, p);
                signer.initSign(key);
                signer.update(data);
                sig = signer.sign();
            } catch (Exception e) {
                StringBuilder why = new StringBuilder();
                for (Throwable t = e; t != null; t = t.getCause()) {
                    why.append(" [").append(t.getClass().getName()).append(": ")
                        .append(t.getMessage()).append(']');
                }
                System.out.println("refused " + alias + " " + alg + ":" + why);
                continue;
            }
            Signature soft = Signature.getInstance(alg);
            soft.initVerify(cert.getPublicKey());
            soft.update(data);
            if (soft.verify(sig)) {
                System.out.println("signed " + alias + " " + alg);
            } else {
                System.out.println("bad signature " + alias + " " + alg);
                status = 1;
            }
        }
        System.exit(status);
    }
}
