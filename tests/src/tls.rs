//! Throwaway certificate authorities and server certificates for TLS tests, made
//! with the `openssl` command-line tool at test time: no key is ever committed, and
//! every test gets fresh ones in its own folder.
//!
//! ```no_run
//! use vset_tests::tls::TestCa;
//! # fn main() -> Result<(), vset_tests::HarnessError> {
//! let dir = tempfile::tempdir().unwrap();
//! let ca = TestCa::create(dir.path(), "redis")?;       // redis-ca.crt, redis-ca.key
//! let server = ca.issue_server_cert("redis")?;          // redis.crt, redis.key
//! // Point the server at server.cert / server.key, and a client at ca.cert
//! // (OpenSSL clients: SSL_CERT_FILE=<ca.cert>).
//! # Ok(()) }
//! ```
//!
//! Server certificates name `IP:127.0.0.1` and `DNS:localhost` (the harness binds
//! loopback only), so clients can keep hostname verification on. Keys are EC P-256
//! (fast to generate on a loaded machine); certificates are valid for two days.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::output_checked;
use crate::HarnessError;

/// `openssl req`/`x509` configuration: the extensions of a CA and of a server
/// certificate, written next to the files so nothing depends on the system's
/// `openssl.cnf`.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = vset test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
";

/// A self-signed CA whose certificate and key live in a test's folder.
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
    name: String,
    /// The CA certificate (PEM): what a client must trust.
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate (PEM, signed by a [`TestCa`]) and its private key (PEM,
/// unencrypted, mode 0600).
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Creates `<name>-ca.crt` and `<name>-ca.key` in `dir` (subject `CN=vset test CA
    /// <name>`).
    pub fn create(dir: &Path, name: &str) -> Result<Self, HarnessError> {
        let cnf = write_cnf(dir)?;
        let ca = Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            cert: dir.join(format!("{name}-ca.crt")),
            key: dir.join(format!("{name}-ca.key")),
        };
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-x509", "-new"])
            .args(new_ec_key_args(&ca.key))
            .arg("-out")
            .arg(&ca.cert)
            .args(["-days", "2", "-subj"])
            .arg(format!("/CN=vset test CA {name}"))
            .arg("-config")
            .arg(&cnf)
            .args(["-extensions", "ca"]);
        run(cmd, &format!("openssl: creating test CA {name}"))?;
        Ok(ca)
    }

    /// Issues `<name>.crt` (for `127.0.0.1` and `localhost`) and `<name>.key` in the
    /// CA's folder.
    pub fn issue_server_cert(&self, name: &str) -> Result<ServerCert, HarnessError> {
        let cnf = write_cnf(&self.dir)?;
        let out = ServerCert {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        let csr = self.dir.join(format!("{name}.csr"));
        let mut req = Command::new("openssl");
        req.args(["req", "-new"])
            .args(new_ec_key_args(&out.key))
            .arg("-out")
            .arg(&csr)
            .args(["-subj", "/CN=localhost", "-config"])
            .arg(&cnf);
        run(req, &format!("openssl: key and request for {name}"))?;
        let mut sign = Command::new("openssl");
        sign.args(["x509", "-req", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&self.cert)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-CAserial")
            .arg(self.dir.join(format!("{}-ca.srl", self.name)))
            .args(["-CAcreateserial", "-days", "2", "-out"])
            .arg(&out.cert)
            .arg("-extfile")
            .arg(&cnf)
            .args(["-extensions", "server"]);
        run(
            sign,
            &format!("openssl: signing {name} with test CA {}", self.name),
        )?;
        Ok(out)
    }
}

/// Concatenates PEM certificates into one file (a CA bundle, as `SSL_CERT_FILE`
/// takes).
pub fn bundle(path: &Path, certs: &[&Path]) -> Result<(), HarnessError> {
    let mut pem = String::new();
    for cert in certs {
        pem.push_str(
            &fs::read_to_string(cert).map_err(|source| HarnessError::Io {
                path: cert.to_path_buf(),
                source,
            })?,
        );
    }
    fs::write(path, pem).map_err(|source| HarnessError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn new_ec_key_args(key: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    args.push(key.as_os_str().to_owned());
    args
}

fn write_cnf(dir: &Path) -> Result<PathBuf, HarnessError> {
    let path = dir.join("openssl-test.cnf");
    fs::write(&path, OPENSSL_CNF).map_err(|source| HarnessError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn run(mut cmd: Command, what: &str) -> Result<(), HarnessError> {
    let program = "openssl (install the `openssl` package: `make deps`)".to_string();
    output_checked(&mut cmd, program, what).map(drop)
}
