//! C functions that h3q needs and quiche's `quiche.h` does not export
//! (h3q uses quiche's transport only; its HTTP/3 layer is h3q's own).
//!
//! Re-exporting quiche keeps its `#[no_mangle]` FFI symbols in the archive.

pub use quiche;

use std::os::raw::c_int;

/// Writes a new self-signed ECDSA P-256 certificate (PEM) valid for `days`
/// days for `host` (also localhost, 127.0.0.1 and ::1) and its private key
/// (PEM, PKCS#8). Returns 0, or -1 on NULL or non-UTF-8 input, -2 when
/// generation fails, -3 when a file cannot be written.
///
/// # Safety
/// The three pointers must be NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn h3qshim_generate_self_signed(
    cert_path: *const std::os::raw::c_char,
    key_path: *const std::os::raw::c_char,
    host: *const std::os::raw::c_char,
    days: u32,
) -> c_int {
    use std::ffi::CStr;
    if cert_path.is_null() || key_path.is_null() || host.is_null() {
        return -1;
    }
    let (Ok(cert_path), Ok(key_path), Ok(host)) = (
        CStr::from_ptr(cert_path).to_str(),
        CStr::from_ptr(key_path).to_str(),
        CStr::from_ptr(host).to_str(),
    ) else {
        return -1;
    };
    let Ok((cert_pem, key_pem)) = self_signed(host, days) else {
        return -2;
    };
    if write_private(key_path, &key_pem).is_err() || std::fs::write(cert_path, cert_pem).is_err() {
        return -3;
    }
    0
}

/// Queues a NEW_TOKEN frame carrying `len` bytes of `token` on a server
/// connection (quiche patch 10: sent once the handshake is confirmed,
/// retransmitted when lost). Returns 0, or -1 on NULL, a client connection,
/// an empty token or one longer than 512 bytes. The token is copied.
///
/// # Safety
/// `conn` must be a live quiche connection and `token` must point to `len`
/// readable bytes.
#[no_mangle]
pub unsafe extern "C" fn h3qshim_conn_send_new_token(
    conn: *mut quiche::Connection,
    token: *const u8,
    len: usize,
) -> c_int {
    if conn.is_null() || token.is_null() {
        return -1;
    }
    let token = std::slice::from_raw_parts(token, len);
    match (*conn).send_new_token(token) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

fn write_private(path: &str, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

fn self_signed(host: &str, days: u32) -> Result<(Vec<u8>, Vec<u8>), boring::error::ErrorStack> {
    use boring::asn1::Asn1Time;
    use boring::bn::{BigNum, MsbOption};
    use boring::ec::{EcGroup, EcKey};
    use boring::hash::MessageDigest;
    use boring::nid::Nid;
    use boring::pkey::PKey;
    use boring::x509::extension::SubjectAlternativeName;
    use boring::x509::{X509NameBuilder, X509};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, host)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;

    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(days)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    let mut san = SubjectAlternativeName::new();
    san.dns(host).dns("localhost").ip("127.0.0.1").ip("::1");
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(&san)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}
