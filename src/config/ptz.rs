//! A camera file's `ptz` section: pan/tilt/zoom over ONVIF (see `src/ptz`). Settings that can
//! be judged without the camera are judged at load, so a wrong CA path or a mistyped fingerprint
//! rejects the camera file with the field named instead of failing on the first button press.

use std::path::PathBuf;

use rustls::ClientConfig;

use super::reader::Section;
use super::secret::Secret;
use crate::tls::client::{ClientTls, Problem};
use crate::tls::pin::{self, Fingerprint};

#[derive(Clone, Debug, PartialEq)]
pub struct PtzConfig {
    pub enabled: bool,
    /// Only `"onvif"`.
    pub protocol: String,
    /// The device service, `http(s)://<ip>:<port>/onvif/device_service`.
    pub onvif_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Default `profile1`.
    pub profile_token: String,
    /// For an `https://` `onvif_url`: the CA certificate(s), PEM, the camera's certificate must
    /// chain to; the system bundle when unset. panelcam extension.
    pub ca_path: Option<PathBuf>,
    /// For an `https://` `onvif_url`: the SHA-256 fingerprint of the camera's own certificate
    /// (self-signed, as on most plant networks). When set, that certificate and no other is
    /// accepted, whatever its issuer, names or dates. panelcam extension.
    pub cert_sha256: Option<Fingerprint>,
}

impl Default for PtzConfig {
    fn default() -> Self {
        PtzConfig {
            enabled: false,
            protocol: "onvif".into(),
            onvif_url: None,
            username: None,
            password: None,
            profile_token: "profile1".into(),
            ca_path: None,
            cert_sha256: None,
        }
    }
}

impl PtzConfig {
    /// The rustls configuration for an `https://` `onvif_url`: the pin when there is one, else
    /// a chain to `ca_path` (or the system bundle) with the host name checked. Reads the CA
    /// file now.
    pub fn tls(&self) -> Result<ClientConfig, Problem> {
        match self.cert_sha256 {
            Some(want) => pin::config(want, "ptz.cert_sha256"),
            None => ClientTls { ca_path: self.ca_path.clone(), ..ClientTls::default() }.config("ptz"),
        }
    }
}

pub(super) fn read_ptz(s: &Section) -> PtzConfig {
    let pin_text = s.opt_string("cert_sha256");
    let cert_sha256 = pin_text.as_deref().and_then(|text| match Fingerprint::parse(text) {
        Ok(f) => Some(f),
        Err(e) => {
            s.ctx().error(&s.field("cert_sha256"), e);
            None
        }
    });
    let p = PtzConfig {
        enabled: s.bool("enabled", false),
        protocol: s.choice("protocol", &["onvif"], "onvif"),
        onvif_url: s.opt_string("onvif_url"),
        username: s.opt_string("username"),
        password: s.opt_string("password").map(Secret::new),
        profile_token: s.string("profile_token", "profile1"),
        ca_path: s.opt_string("ca_path").map(PathBuf::from),
        cert_sha256,
    };
    if p.enabled && p.onvif_url.is_none() {
        s.ctx().error(
            &s.field("onvif_url"),
            "is required when ptz.enabled is true; expected http(s)://<ip>:<port>/onvif/device_service",
        );
    }
    // A disabled section is not judged beyond its syntax, as for `mqtt`.
    let pin_is_malformed = pin_text.is_some() && p.cert_sha256.is_none();
    if p.enabled && !pin_is_malformed {
        check_tls(s, &p, pin_text.is_some());
    }
    s.finish();
    p
}

/// TLS settings that would do nothing are errors, as `mqtt.tls` with an `mqtt://` broker is.
fn check_tls(s: &Section, p: &PtzConfig, pinned: bool) {
    let Some(url) = p.onvif_url.as_deref().map(str::trim) else { return };
    let https = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if !https {
        for (key, set) in [("ca_path", p.ca_path.is_some()), ("cert_sha256", pinned)] {
            if set {
                s.ctx().error(
                    &s.field(key),
                    format!(
                        "is set but ptz.onvif_url is not https:// (no TLS); use the camera's https:// address, or remove ptz.{key}"
                    ),
                );
            }
        }
        return;
    }
    if p.ca_path.is_some() && pinned {
        s.ctx().error(
            &s.field("ca_path"),
            "is not used with ptz.cert_sha256 (the pinned certificate is accepted whatever signed it); remove one of the two",
        );
        return;
    }
    // Read the CA file now, so a wrong path rejects the camera file instead of the first move.
    if let Err(problem) = p.tls() {
        s.ctx().error(&problem.field, problem.message);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;
    use crate::config::parse_camera;

    const PIN: &str = "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08";

    /// The camera's PTZ settings, or its problems as `panelcam check` prints them.
    fn load(ptz: Value) -> Result<PtzConfig, Vec<String>> {
        let text = json!({"path": "/cam1", "url": "rtsp://cam/s", "ptz": ptz}).to_string();
        match parse_camera(Path::new("cameras/cam1.json"), &text) {
            Ok((cam, warnings)) if warnings.is_empty() => Ok(cam.ptz),
            Ok((_, warnings)) => Err(warnings.iter().map(ToString::to_string).collect()),
            Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
        }
    }

    fn https(extra: Value) -> Value {
        let mut ptz = json!({"enabled": true, "onvif_url": "https://10.0.0.9/onvif/device_service"});
        ptz.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        ptz
    }

    fn ca_file() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("panelcam-ptz-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        let path = dir.join("plant-ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        path
    }

    #[test]
    fn https_with_a_pin_or_a_ca_file_loads() {
        let p = load(https(json!({"cert_sha256": PIN.to_lowercase().replace(':', "")}))).unwrap();
        assert_eq!(p.cert_sha256.map(|f| f.to_string()).as_deref(), Some(PIN));
        let ca = ca_file();
        let p = load(https(json!({"ca_path": ca}))).unwrap();
        assert_eq!(p.ca_path.as_deref(), Some(ca.as_path()));
        assert!(p.tls().is_ok());
        // Files without the new settings read as before.
        let p = load(json!({"enabled": true, "onvif_url": "http://10.0.0.9/onvif/device_service"})).unwrap();
        assert_eq!((p.ca_path, p.cert_sha256), (None, None));
    }

    #[test]
    fn a_malformed_fingerprint_rejects_the_camera_naming_the_field() {
        let e = load(https(json!({"cert_sha256": &PIN[3..]}))).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("error: cameras/cam1.json: field `ptz.cert_sha256`: expected 64 hex digits"),
            "{}",
            e[0]
        );
        assert!(e[0].contains("found 62 hex digits"), "{}", e[0]);
        // Even in a disabled section: it is a typo either way.
        let e = load(json!({"enabled": false, "cert_sha256": "not a fingerprint"})).unwrap_err();
        assert!(e[0].contains("`ptz.cert_sha256`"), "{e:?}");
    }

    #[test]
    fn an_unreadable_ca_file_rejects_the_camera_naming_field_and_file() {
        let e = load(https(json!({"ca_path": "/nonexistent/plant-ca.pem"}))).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("field `ptz.ca_path`: /nonexistent/plant-ca.pem: cannot read the CA certificate"),
            "{e:?}"
        );
        // Unused while PTZ is off, so not judged (as for mqtt.tls).
        assert!(load(json!({"enabled": false, "ca_path": "/nonexistent/plant-ca.pem"})).is_ok());
    }

    #[test]
    fn tls_settings_that_would_do_nothing_are_errors() {
        let http = |extra: Value| {
            let mut ptz = https(extra);
            ptz["onvif_url"] = json!("http://10.0.0.9/onvif/device_service");
            load(ptz).unwrap_err()
        };
        let e = http(json!({"cert_sha256": PIN}));
        assert!(e[0].contains("`ptz.cert_sha256`: is set but ptz.onvif_url is not https://"), "{e:?}");
        let e = http(json!({"ca_path": ca_file()}));
        assert!(e[0].contains("`ptz.ca_path`: is set but ptz.onvif_url is not https://"), "{e:?}");
        let e = load(https(json!({"ca_path": ca_file(), "cert_sha256": PIN}))).unwrap_err();
        assert!(e[0].contains("`ptz.ca_path`: is not used with ptz.cert_sha256"), "{e:?}");
    }
}
