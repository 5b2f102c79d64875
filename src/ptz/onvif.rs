//! ONVIF PTZ operations as request bodies and readers of their answers, and the per-camera
//! [`Session`] (clock skew, PTZ service address) they run in.

use std::time::Duration;

use super::client;
use super::error::PtzError;
use super::soap::{self, Answer, Credentials, escape};
use super::tls::CameraTls;
use super::url::OnvifUrl;
use super::xml::Element;
use crate::config::PtzConfig;
use crate::config::secret::Secret;
use crate::util::{now_ms, parse_time};

const DEVICE_NS: &str = "http://www.onvif.org/ver10/device/wsdl";
const PTZ_NS: &str = "http://www.onvif.org/ver20/ptz/wsdl";

/// A validated velocity: each axis within −1..1. `zoom: None` leaves zoom alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Velocity {
    pub pan: f64,
    pub tilt: f64,
    pub zoom: Option<f64>,
}

/// One preset as `GetPresets` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preset {
    pub token: String,
    pub name: String,
}

/// What panelcam knows about one camera's ONVIF service after the first call: where PTZ
/// requests go and how far the device's clock is from ours. Measured once and cached (see
/// `Ptz`), measured again after the settings change or the device refuses our credentials.
#[derive(Clone, Debug)]
pub struct Session {
    device: OnvifUrl,
    /// The PTZ service (from GetCapabilities), or the device service when none is named.
    ptz: OnvifUrl,
    /// The check of the camera's certificate, for an `https://` device service (the PTZ
    /// service is on the same host and scheme).
    tls: Option<CameraTls>,
    username: String,
    /// Kept as a `Secret` so a debug print of the session cannot show it.
    password: Secret,
    profile: String,
    /// Device clock minus ours, in milliseconds.
    pub skew_ms: i64,
    timeout: Duration,
}

impl Session {
    /// Measures the clock skew (GetSystemDateAndTime needs no credentials, ONVIF Core §5.9.4)
    /// and finds the PTZ service address (GetCapabilities).
    pub async fn open(config: &PtzConfig, timeout: Duration) -> Result<Session, PtzError> {
        let url = config.onvif_url.as_deref().ok_or_else(|| {
            PtzError::Config("ptz.onvif_url is not set; expected http(s)://<ip>:<port>/onvif/device_service".into())
        })?;
        let device = OnvifUrl::parse(url, "ptz.onvif_url")?;
        let tls = if device.tls { Some(CameraTls::new(config)?) } else { None };
        let mut s = Session {
            ptz: device.clone(),
            tls,
            device,
            username: config.username.clone().unwrap_or_default(),
            password: config.password.clone().unwrap_or_else(|| Secret::new(String::new())),
            profile: config.profile_token.clone(),
            skew_ms: 0,
            timeout,
        };
        let before = now_ms();
        let answer =
            s.call_at(&s.device.clone(), "GetSystemDateAndTime", DEVICE_NS, "<tds:GetSystemDateAndTime/>", false).await;
        match answer {
            Ok(body) => {
                if let Some(device_ms) = read_device_time(&body) {
                    // The device read its clock somewhere during the round trip: assume the middle.
                    let ours = before + (now_ms() - before) / 2;
                    s.skew_ms = device_ms - ours;
                }
            }
            // A device that answers but will not tell its time: use ours.
            Err(PtzError::Fault { .. } | PtzError::Protocol(_)) => {}
            Err(e) => return Err(e),
        }
        let caps = s
            .call_at(
                &s.device.clone(),
                "GetCapabilities",
                DEVICE_NS,
                "<tds:GetCapabilities><tds:Category>PTZ</tds:Category></tds:GetCapabilities>",
                true,
            )
            .await;
        match caps {
            Ok(body) => {
                if let Some(path) = ptz_service_path(&body) {
                    s.ptz = OnvifUrl { path, ..s.device.clone() };
                }
            }
            // Not every device implements GetCapabilities; PTZ calls then go to the device service.
            Err(PtzError::Fault { ref code, .. }) if !code.ends_with("NotAuthorized") => {}
            Err(PtzError::Protocol(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(s)
    }

    pub async fn continuous_move(&self, v: Velocity, timeout: Option<Duration>) -> Result<(), PtzError> {
        let zoom = v.zoom.map(|z| format!(r#"<tt:Zoom x="{z}"/>"#)).unwrap_or_default();
        let timeout =
            timeout.map(|t| format!("<tptz:Timeout>PT{}S</tptz:Timeout>", t.as_secs_f64())).unwrap_or_default();
        let body = format!(
            r#"<tptz:ContinuousMove>{}<tptz:Velocity><tt:PanTilt x="{}" y="{}"/>{zoom}</tptz:Velocity>{timeout}</tptz:ContinuousMove>"#,
            self.profile_xml(),
            v.pan,
            v.tilt
        );
        self.ptz_call("ContinuousMove", &body).await.map(drop)
    }

    pub async fn stop(&self) -> Result<(), PtzError> {
        let body = format!(
            "<tptz:Stop>{}<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom></tptz:Stop>",
            self.profile_xml()
        );
        self.ptz_call("Stop", &body).await.map(drop)
    }

    pub async fn goto_preset(&self, token: &str) -> Result<(), PtzError> {
        let body = format!(
            "<tptz:GotoPreset>{}<tptz:PresetToken>{}</tptz:PresetToken></tptz:GotoPreset>",
            self.profile_xml(),
            escape(token)
        );
        self.ptz_call("GotoPreset", &body).await.map(drop)
    }

    /// Saves the current position; returns the preset's token (the device's choice when
    /// `token` is `None`).
    pub async fn set_preset(&self, name: Option<&str>, token: Option<&str>) -> Result<String, PtzError> {
        let name = name.map(|n| format!("<tptz:PresetName>{}</tptz:PresetName>", escape(n))).unwrap_or_default();
        let token = token.map(|t| format!("<tptz:PresetToken>{}</tptz:PresetToken>", escape(t))).unwrap_or_default();
        let body = format!("<tptz:SetPreset>{}{name}{token}</tptz:SetPreset>", self.profile_xml());
        let answer = self.ptz_call("SetPreset", &body).await?;
        read_preset_token(&answer)
            .ok_or_else(|| PtzError::Protocol("the camera's SetPreset answer has no PresetToken".into()))
    }

    pub async fn presets(&self) -> Result<Vec<Preset>, PtzError> {
        let body = format!("<tptz:GetPresets>{}</tptz:GetPresets>", self.profile_xml());
        Ok(read_presets(&self.ptz_call("GetPresets", &body).await?))
    }

    fn profile_xml(&self) -> String {
        format!("<tptz:ProfileToken>{}</tptz:ProfileToken>", escape(&self.profile))
    }

    async fn ptz_call(&self, action: &'static str, body: &str) -> Result<Element, PtzError> {
        self.call_at(&self.ptz, action, PTZ_NS, body, true).await
    }

    /// One SOAP exchange; a fault or an HTTP error is an error naming `action`.
    async fn call_at(
        &self,
        url: &OnvifUrl,
        action: &'static str,
        ns: &str,
        body: &str,
        authenticated: bool,
    ) -> Result<Element, PtzError> {
        let credentials = Credentials {
            username: &self.username,
            password: self.password.expose(),
            device_now_ms: now_ms() + self.skew_ms,
        };
        let with = (authenticated && !self.username.is_empty()).then_some(&credentials);
        let envelope = soap::envelope(body, with)
            .map_err(|e| PtzError::Protocol(format!("no randomness for the WS-Security nonce: {e}")))?;
        let (status, bytes) =
            client::post(url, self.tls.as_ref(), &format!("{ns}/{action}"), envelope, self.timeout).await?;
        match soap::read_answer(&bytes) {
            Ok(Answer::Fault(f)) => Err(PtzError::Fault { action, code: f.code, reason: f.reason }),
            Ok(Answer::Body(b)) if (200..300).contains(&status) => Ok(b),
            Ok(Answer::Body(_)) | Err(_) if status == 401 => Err(PtzError::Protocol(format!(
                "the camera answered ONVIF {action} with HTTP 401: it wants HTTP authentication, \
                 which panelcam does not speak yet (only WS-Security); check the camera's ONVIF user settings"
            ))),
            Ok(Answer::Body(_)) | Err(_) if !(200..300).contains(&status) => Err(PtzError::Protocol(format!(
                "the camera answered ONVIF {action} with HTTP {status} (no SOAP fault)"
            ))),
            Ok(Answer::Body(b)) => Ok(b),
            Err(e) => Err(PtzError::Protocol(format!("the camera's answer to ONVIF {action} is unreadable: {e}"))),
        }
    }
}

/// `UTCDateTime` of a GetSystemDateAndTimeResponse, in milliseconds.
pub fn read_device_time(body: &Element) -> Option<i64> {
    let utc = body.find("UTCDateTime")?;
    let num = |path: &[&str]| utc.path(path).and_then(|e| e.text.parse::<u32>().ok());
    let (y, mo, d) = (num(&["Date", "Year"])?, num(&["Date", "Month"])?, num(&["Date", "Day"])?);
    let (h, mi, s) = (num(&["Time", "Hour"])?, num(&["Time", "Minute"])?, num(&["Time", "Second"])?);
    parse_time(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")).ok()
}

/// The path of `Capabilities/PTZ/XAddr`. Only the path is used: the host a camera reports is
/// often its address inside another network (NAT, a second interface), while the configured
/// `onvif_url` is known to reach it (with the configured scheme and certificate check).
pub fn ptz_service_path(body: &Element) -> Option<String> {
    let xaddr = body.find("PTZ")?.child("XAddr")?;
    let url = OnvifUrl::parse(&xaddr.text, "XAddr").ok()?;
    Some(url.path)
}

pub fn read_preset_token(body: &Element) -> Option<String> {
    body.find("PresetToken").map(|t| t.text.clone()).filter(|t| !t.is_empty())
}

/// Presets in the device's order. A preset without a token cannot be used and is left out.
pub fn read_presets(body: &Element) -> Vec<Preset> {
    let mut found = Vec::new();
    body.find_all("Preset", &mut found);
    found
        .into_iter()
        .filter_map(|p| {
            let token = p.attr("token").filter(|t| !t.is_empty())?.to_string();
            let name = p.child("Name").map(|n| n.text.clone()).unwrap_or_default();
            Some(Preset { token, name })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptz::xml::parse;

    fn body(xml: &str) -> Element {
        match soap::read_answer(xml.as_bytes()).unwrap() {
            Answer::Body(b) => b,
            Answer::Fault(f) => panic!("{f:?}"),
        }
    }

    #[test]
    fn reads_the_device_clock() {
        let b = body(
            r#"<SOAP-ENV:Envelope><SOAP-ENV:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>
            <tt:DateTimeType>NTP</tt:DateTimeType><tt:UTCDateTime><tt:Time><tt:Hour>10</tt:Hour><tt:Minute>0</tt:Minute>
            <tt:Second>5</tt:Second></tt:Time><tt:Date><tt:Year>2025</tt:Year><tt:Month>8</tt:Month><tt:Day>15</tt:Day>
            </tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        );
        assert_eq!(read_device_time(&b), Some(1_755_252_005_000));
        assert_eq!(
            read_device_time(&parse(b"<a><UTCDateTime><Date><Year>x</Year></Date></UTCDateTime></a>").unwrap()),
            None
        );
    }

    #[test]
    fn reads_presets_tokens_and_the_ptz_address() {
        let b = body(
            r#"<e:Envelope><e:Body><ns2:GetPresetsResponse><ns2:Preset token="Preset_1"><ns1:Name>Gate</ns1:Name></ns2:Preset>
            <ns2:Preset token=""><ns1:Name>broken</ns1:Name></ns2:Preset><ns2:Preset token="7"/></ns2:GetPresetsResponse></e:Body></e:Envelope>"#,
        );
        assert_eq!(
            read_presets(&b),
            vec![
                Preset { token: "Preset_1".into(), name: "Gate".into() },
                Preset { token: "7".into(), name: String::new() }
            ]
        );
        let set = body(
            "<s:Envelope><s:Body><SetPresetResponse><PresetToken>12</PresetToken></SetPresetResponse></s:Body></s:Envelope>",
        );
        assert_eq!(read_preset_token(&set).as_deref(), Some("12"));
        let caps = body(
            r#"<s:Envelope><s:Body><tds:GetCapabilitiesResponse><tds:Capabilities><tt:PTZ>
            <tt:XAddr>http://10.0.0.5/onvif/PTZ</tt:XAddr></tt:PTZ></tds:Capabilities></tds:GetCapabilitiesResponse></s:Body></s:Envelope>"#,
        );
        assert_eq!(ptz_service_path(&caps).as_deref(), Some("/onvif/PTZ"));
    }
}
