//! The teal.toml `teal init` writes: the answers in place, each line
//! commented, the optional keys a new user reaches for next left commented out.

use std::net::SocketAddr;

/// How the service runs.
pub(super) enum Runs {
    Command(Vec<String>),
    Image { image: String, port: u16 },
}

pub(super) struct Answers<'a> {
    pub service: &'a str,
    pub runs: &'a Runs,
    pub listen: SocketAddr,
    pub health: &'a str,
    pub instances: usize,
}

/// A TOML string, quoted and escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A bare key when it can be one, else a quoted one.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare { name.to_owned() } else { quoted(name) }
}

pub(super) fn render(a: &Answers) -> String {
    let name = key(a.service);
    let runs = match a.runs {
        Runs::Command(command) => {
            let args: Vec<String> = command.iter().map(|arg| quoted(arg)).collect();
            format!(
                "# The app, started once per instance. {{port}} is the port teal gives\n\
                 # each instance (also in $PORT); there is no shell, so no $VARIABLES.\n\
                 command = [{}]\n",
                args.join(", ")
            )
        }
        Runs::Image { image, port } => format!(
            "# Containers of this image on the local Docker engine; {{version}} is the\n\
             # version deployed. The app listens on `port` inside the container, on\n\
             # all interfaces.\n\
             runtime = \"docker\"\n\
             image = {}\n\
             port = {port}\n",
            quoted(image)
        ),
    };
    format!(
        "# teal.toml: how teal deploys {service} (teal's README lists every key).\n\
         # `teal check` says whether this file can be used; `teal serve` runs the daemon.\n\
         \n\
         [proxy]\n\
         # Where clients connect: the production listener.\n\
         listen = {listen}\n\
         \n\
         [services.{name}]\n\
         {runs}\
         # Instances per slot: blue and green each run this many.\n\
         instances = {instances}\n\
         # What `teal deploy {service}` deploys when --version is not given:\n\
         # version = \"1.0.0\"\n\
         # A second listener that reaches the standby slot before it goes live:\n\
         # preview = \"127.0.0.1:8081\"\n\
         # Environment for the app, and secrets: values come from this machine's\n\
         # environment or the file .teal/secrets (mode 0600), never from this file.\n\
         # env = {{ LOG_LEVEL = \"info\" }}\n\
         # secrets = [\"DATABASE_URL\"]\n\
         \n\
         [services.{name}.health]\n\
         # Requested with GET until it answers 2xx or 3xx: then the instance is ready.\n\
         path = {health}\n\
         # How long a new version may take to become ready before its deploy fails:\n\
         # deadline = \"60s\"\n",
        service = a.service,
        listen = quoted(&a.listen.to_string()),
        instances = a.instances,
        health = quoted(a.health),
    )
}
