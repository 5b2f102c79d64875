//! The topic tree under `mqtt.base_topic`, in one place so README, tests and code agree:
//!
//! - `<base>/availability`            "online" / "offline", retained; "offline" is the last will
//! - `<base>/status`                  the server: version, uptime, cameras
//! - `<base>/cameras/<id>/status`     one camera, the same document as in `/api/status`
//! - `<base>/cameras/<id>/capturing`  picture arrival `{t, d, s}`
//! - `<base>/cameras/<id>/jpg`        JPEG bytes (or the camera's `mqtt.topic_name`)
//! - `<base>/cameras/<id>/command`    recording commands in (with `mqtt.commands_enabled`)
//! - `<base>/cameras/<id>/command/reply`  their answers

#[derive(Clone, Debug)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(base: &str) -> Topics {
        Topics { base: base.trim_end_matches('/').to_string() }
    }

    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    pub fn camera(&self, id: &str, leaf: &str) -> String {
        format!("{}/cameras/{id}/{leaf}", self.base)
    }

    /// The subscription that receives every camera's commands.
    pub fn command_filter(&self) -> String {
        format!("{}/cameras/+/command", self.base)
    }

    /// The camera id of a command topic, `None` for any other topic.
    pub fn command_camera<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix("/cameras/")?;
        let id = rest.strip_suffix("/command")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree() {
        let t = Topics::new("Videoserver/panel1/");
        assert_eq!(t.availability(), "Videoserver/panel1/availability");
        assert_eq!(t.camera("cam1", "jpg"), "Videoserver/panel1/cameras/cam1/jpg");
        assert_eq!(t.command_filter(), "Videoserver/panel1/cameras/+/command");
    }

    #[test]
    fn command_topics_name_their_camera() {
        let t = Topics::new("b");
        assert_eq!(t.command_camera("b/cameras/cam1/command"), Some("cam1"));
        for other in
            ["b/cameras/cam1/command/reply", "b/cameras//command", "b/cameras/a/b/command", "x/cameras/c/command", "b"]
        {
            assert_eq!(t.command_camera(other), None, "{other}");
        }
    }
}
