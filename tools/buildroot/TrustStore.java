// Writes a PKCS#12 trust store holding every certificate of a PEM bundle, for Bazel's JVM:
//   java TrustStore.java BUNDLE.pem STORE.p12 PASSWORD
// Bazel downloads (repository rules) trust only the JVM's store; behind a TLS-inspecting proxy
// the machine's CA bundle is what pip and apt trust, so provision.sh gives Bazel the same.
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;

public class TrustStore {
  public static void main(String[] args) throws Exception {
    KeyStore store = KeyStore.getInstance("PKCS12");
    store.load(null, null);
    int count = 0;
    try (FileInputStream bundle = new FileInputStream(args[0])) {
      for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(bundle)) {
        store.setCertificateEntry("ca-" + count++, cert);
      }
    }
    if (count == 0) {
      throw new IllegalArgumentException(args[0] + " holds no certificate");
    }
    try (FileOutputStream out = new FileOutputStream(args[1])) {
      store.store(out, args[2].toCharArray());
    }
    System.out.println(count + " certificates in " + args[1]);
  }
}
