//! A throwaway certificate authority and a server certificate for `localhost` / `127.0.0.1`, made with the
//! `openssl` CLI (EC P-256: a key takes milliseconds where RSA takes a tenth of a second).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_ok, tool};

/// Files of a test PKI: `ca.crt` is what clients trust; `server.crt`/`server.key` are what the server presents.
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The CA's key, to sign more certificates ([`client_cert`]).
    pub ca_key: PathBuf,
    pub config: PathBuf,
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = octopush test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Writes a CA and a server certificate (`subjectAltName=DNS:localhost,IP:127.0.0.1`) into `dir`.
pub fn make_pki(dir: &Path) -> TestPki {
    let openssl = tool("openssl");
    std::fs::create_dir_all(dir).expect("create pki dir");
    let cnf = dir.join("openssl.cnf");
    std::fs::write(&cnf, OPENSSL_CNF).expect("write openssl.cnf");
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (server_cert, server_key, csr) = (dir.join("server.crt"), dir.join("server.key"), dir.join("server.csr"));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run_ok(
        Command::new(&openssl)
            .args(["req", "-x509", "-config"])
            .arg(&cnf)
            .args(["-extensions", "v3_ca", "-days", "7"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert),
    );
    run_ok(
        Command::new(&openssl)
            .args(["req", "-new", "-config"])
            .arg(&cnf)
            .args(["-subj", "/CN=localhost"])
            .args(ec)
            .arg("-keyout")
            .arg(&server_key)
            .arg("-out")
            .arg(&csr),
    );
    run_ok(
        Command::new(&openssl)
            .args(["x509", "-req", "-days", "7", "-set_serial", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&cnf)
            .args(["-extensions", "server", "-out"])
            .arg(&server_cert),
    );
    TestPki { ca_cert, server_cert, server_key, ca_key, config: cnf }
}

/// A client certificate signed by `pki`'s CA, for servers that verify clients (dockerd `--tlsverify`): returns
/// the certificate and key paths, written into `dir` as `cert.pem` and `key.pem`.
pub fn client_cert(pki: &TestPki, dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = tool("openssl");
    std::fs::create_dir_all(dir).expect("create client cert dir");
    let (cert, key, csr) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("client.csr"));
    run_ok(
        Command::new(&openssl)
            .args(["req", "-new", "-config"])
            .arg(&pki.config)
            .args(["-subj", "/CN=octopush-test-client", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    run_ok(
        Command::new(&openssl)
            .args(["x509", "-req", "-days", "7", "-set_serial", "3", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&pki.ca_cert)
            .arg("-CAkey")
            .arg(&pki.ca_key)
            .arg("-extfile")
            .arg(&pki.config)
            .args(["-extensions", "client", "-out"])
            .arg(&cert),
    );
    (cert, key)
}
