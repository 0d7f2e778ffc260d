//! `[services.NAME.hooks]` and `[services.NAME.verify]`: defaults, both hook forms,
//! and every error with its line:column.

use std::time::Duration;

use crate::config::fixtures::{WEB, assert_err, ok};
use crate::spec::{DEFAULT_HOOK_TIMEOUT, HookPlace, HookSpec, HooksSpec, Inconclusive, VerifySpec};

#[test]
fn the_issue_example_parses() {
    let config = ok(&format!(
        "{WEB}[services.web.hooks]\n\
         pre_deploy  = [\"./bin/migrate\", \"expand\"]\n\
         pre_switch  = [\"./bin/smoke\", \"{{preview_url}}\"]\n\
         post_switch = [\"./bin/notify\", \"{{version}}\"]\n\
         post_retire = [\"./bin/migrate\", \"contract\"]\n\
         [services.web.verify]\nwindow = \"60s\"\nmax_error_rate = 0.01\nmax_p99 = \"500ms\"\nmin_requests = 20\n"
    ));
    let web = &config.services["web"];
    let hook = |command: &[&str]| {
        Some(HookSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: DEFAULT_HOOK_TIMEOUT,
            run_in: HookPlace::Host,
        })
    };
    assert_eq!(
        web.hooks,
        HooksSpec {
            pre_deploy: hook(&["./bin/migrate", "expand"]),
            pre_switch: hook(&["./bin/smoke", "{preview_url}"]),
            post_switch: hook(&["./bin/notify", "{version}"]),
            post_retire: hook(&["./bin/migrate", "contract"]),
            rollback_on_failure: false,
        }
    );
    assert_eq!(
        web.verify,
        Some(VerifySpec {
            window: Duration::from_secs(60),
            max_error_rate: 0.01,
            max_p99: Some(Duration::from_millis(500)),
            min_requests: 20,
            on_inconclusive: Inconclusive::Promote,
        })
    );
}

#[test]
fn no_sections_means_no_hooks_and_no_window() {
    let web = ok(WEB).services.remove("web").unwrap();
    assert!(web.hooks.is_empty());
    assert_eq!(web.verify, None);
    let empty = ok(&format!("{WEB}[services.web.verify]\n"));
    assert_eq!(empty.services["web"].verify, Some(VerifySpec::default()));
}

#[test]
fn a_hook_table_overrides_the_section_defaults() {
    let config = ok(&format!(
        "{WEB}[services.web.hooks]\ntimeout = \"30s\"\nrollback_on_failure = true\n\
         pre_deploy = {{ command = [\"migrate\"], timeout = \"10m\" }}\n\
         post_switch = [\"notify\"]\n\
         [services.web.verify]\nmax_error_rate = 0\nmin_requests = 0\non_inconclusive = \"fail\"\n"
    ));
    let web = &config.services["web"];
    assert!(web.hooks.rollback_on_failure);
    let pre = web.hooks.pre_deploy.as_ref().unwrap();
    assert_eq!(pre.timeout, Duration::from_secs(600));
    assert_eq!(
        web.hooks.post_switch.as_ref().unwrap().timeout,
        Duration::from_secs(30)
    );
    let verify = web.verify.as_ref().unwrap();
    assert_eq!(verify.max_error_rate, 0.0);
    assert_eq!(verify.min_requests, 0);
    assert_eq!(verify.on_inconclusive, Inconclusive::Fail);
}

#[test]
fn hook_errors_point_at_the_value() {
    let hooks = |body: &str| format!("{WEB}[services.web.hooks]\n{body}\n");
    assert_err(
        &hooks("pre_deploy = []"),
        4,
        14,
        &["services.web.hooks.pre_deploy is empty"],
    );
    assert_err(
        &hooks("pre_deploy = [\"\"]"),
        4,
        14,
        &["empty program name"],
    );
    assert_err(
        &hooks("pre_switch = \"./smoke\""),
        4,
        14,
        &["a command array"],
    );
    assert_err(
        &hooks("post_switch = [\"notify\", \"{versoin}\"]"),
        4,
        15,
        &[
            "unknown placeholder {versoin}",
            "{version}",
            "{preview_url}",
        ],
    );
    assert_err(
        &hooks("pre_deploy = { timeout = \"1s\" }"),
        4,
        14,
        &["has no command"],
    );
    assert_err(
        &hooks("pre_deploy = { command = [\"m\"], timeout = \"soon\" }"),
        4,
        43,
        &["services.web.hooks.pre_deploy.timeout"],
    );
    assert_err(&hooks("timeout = \"0s\""), 4, 11, &["greater than zero"]);
    assert_err(
        &hooks("run_in = \"vm\""),
        4,
        10,
        &["expected \"host\" or \"image\""],
    );
    assert_err(
        &hooks("run_in = \"image\""),
        4,
        10,
        &["needs runtime = \"docker\"", "process runtime"],
    );
    assert_err(
        &hooks("pre_deploy = { command = [\"m\"], run_in = \"image\" }"),
        4,
        42,
        &["pre_deploy.run_in"],
    );
    // JSON or shell braces are not placeholders.
    let json = ok(&hooks(
        "post_switch = [\"curl\", \"-d\", \"{\\\"v\\\": 1}\", \"{A}\"]",
    ));
    assert!(json.services["web"].hooks.post_switch.is_some());
}

#[test]
fn unknown_hook_and_verify_keys_are_named() {
    assert_err(
        &format!("{WEB}[services.web.hooks]\npre_deploi = [\"m\"]\n"),
        4,
        1,
        &[
            "unknown key \"pre_deploi\" in [services.web.hooks]",
            "did you mean \"pre_deploy\"",
        ],
    );
    assert_err(
        &format!(
            "{WEB}[services.web.hooks]\npre_deploy = {{ command = [\"m\"], timeot = \"1s\" }}\n"
        ),
        4,
        33,
        &["unknown key \"timeot\" in [services.web.hooks.pre_deploy]"],
    );
    assert_err(
        &format!("{WEB}[services.web.verify]\nwindo = \"1s\"\n"),
        4,
        1,
        &["in [services.web.verify]", "did you mean \"window\""],
    );
}

#[test]
fn verify_errors_point_at_the_value() {
    let verify = |body: &str| format!("{WEB}[services.web.verify]\n{body}\n");
    assert_err(
        &verify("window = \"0s\""),
        4,
        10,
        &["window must be greater than zero"],
    );
    assert_err(
        &verify("max_error_rate = 5"),
        4,
        18,
        &["between 0 and 1", "got 5"],
    );
    assert_err(
        &verify("max_error_rate = -0.1"),
        4,
        18,
        &["between 0 and 1"],
    );
    assert_err(&verify("max_error_rate = \"1%\""), 4, 18, &[]);
    assert_err(&verify("max_p99 = \"fast\""), 4, 11, &["invalid duration"]);
    assert_err(&verify("min_requests = -1"), 4, 16, &["zero or more"]);
    assert_err(
        &verify("on_inconclusive = \"rollback\""),
        4,
        19,
        &["expected \"promote\" or \"fail\""],
    );
}
