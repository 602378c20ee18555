//! Test certificates made with the `openssl` command line, as PEM files in a
//! temporary folder: a CA (`ca`), another CA (`other-ca`), and leaves signed
//! by them, each as `<name>.key`, `<name>.crt` and `<name>.pem` (key and
//! certificate together: a PEM keystore).
//!
//! - `server`: `CN=localhost`, SAN DNS:localhost and IP:127.0.0.1, for serving.
//! - `client`: `CN=client,OU=eng,O=fjord`, for client authentication.
//! - `stranger`: like `client`, signed by `other-ca`.
//! - `node` / `rogue-node`: both ways (a node dials and accepts other
//!   nodes), signed by `ca` / `other-ca`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::run_ok;

pub struct Certs {
    dir: TempDir,
}

impl Certs {
    /// Makes every certificate above; `prefix` names the temporary folder.
    pub fn make(prefix: &str) -> Certs {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let c = Certs { dir };
        c.ca("ca", "/CN=fjord-test-ca");
        c.ca("other-ca", "/CN=some-other-ca");
        c.leaf("server", "ca", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
        c.leaf("client", "ca", "/O=fjord/OU=eng/CN=client", "extendedKeyUsage=clientAuth\n");
        c.leaf("stranger", "other-ca", "/O=fjord/OU=eng/CN=stranger", "extendedKeyUsage=clientAuth\n");
        let node = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
        c.leaf("node", "ca", "/CN=fjord-node", node);
        c.leaf("rogue-node", "other-ca", "/CN=fjord-node", node);
        c
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// [`Self::path`] as a string, for settings.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// librdkafka's TLS settings: trust `ca`, and present `cert` if named.
    pub fn rdkafka(&self, ca: &str, cert: Option<&str>) -> Vec<(String, String)> {
        let mut s = vec![("ssl.ca.location".to_string(), self.p(&format!("{ca}.pem")))];
        if let Some(c) = cert {
            s.push(("ssl.certificate.location".into(), self.p(&format!("{c}.crt"))));
            s.push(("ssl.key.location".into(), self.p(&format!("{c}.key"))));
        }
        s
    }

    /// A Java client's TLS lines (PEM stores): trust `ca`, and present `cert` if named.
    pub fn java(&self, ca: &str, cert: Option<&str>) -> String {
        let mut text = format!("ssl.truststore.type=PEM\nssl.truststore.location={}\n", self.p(&format!("{ca}.pem")));
        if let Some(c) = cert {
            text.push_str(&format!("ssl.keystore.type=PEM\nssl.keystore.location={}\n", self.p(&format!("{c}.pem"))));
        }
        text
    }

    fn openssl(&self, args: &[&str]) {
        run_ok(Command::new("openssl").args(args).current_dir(self.dir.path()), None, Duration::from_secs(60));
    }

    fn ca(&self, name: &str, subject: &str) {
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let ca = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
        self.openssl(&[&["req", "-x509"][..], &curve, &["-days", "2", "-subj", subject, "-keyout", &key, "-out", &pem], &ca].concat());
    }

    fn leaf(&self, name: &str, ca: &str, subject: &str, extensions: &str) {
        let [key, csr, crt, ext] = ["key", "csr", "crt", "ext"].map(|e| format!("{name}.{e}"));
        fs::write(self.path(&ext), extensions).unwrap();
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        self.openssl(&[&["req"][..], &curve, &["-subj", subject, "-keyout", &key, "-out", &csr]].concat());
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ]);
        let text = fs::read_to_string(self.path(&key)).unwrap() + &fs::read_to_string(self.path(&crt)).unwrap();
        fs::write(self.path(&format!("{name}.pem")), text).unwrap();
    }
}
