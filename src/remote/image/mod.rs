//! Shipping docker images to hosts with no registry: the classic
//! `docker save | gzip | pv | ssh host docker load`, done properly.
//!
//! For a docker service deployed to hosts, the CLI resolves the image reference
//! to its image ID on this machine's engine ([`LocalImage`]). Then, per host,
//! after the deploy lock is taken and before anything is staged (`ship.rs`):
//!
//! 1. **Ask** the host's engine whether it has that image ID: `teal image has ID`
//!    runs there over ssh and asks through bollard (`host.rs`), so the host needs
//!    no docker CLI. If it has it, nothing travels (the reference is pointed at it,
//!    as a load would have done).
//! 2. **Stream** otherwise: this engine's export (`docker save` of the ID) →
//!    zstd → the stdin of `teal image load` over the ssh connection, which
//!    decompresses and hands the archive to the host engine's load API. Nothing
//!    is written to disk on either side, and an interrupted stream is an
//!    incomplete zstd frame, which the host refuses before the engine sees the end.
//! 3. **Verify** by asking again: the host must now have exactly that ID.
//!
//! The deploy then runs by that ID on every host (`DeployRequest::image`), so
//! a tag that moves on either side cannot change what runs.
//!
//! # The seam for layer-aware transfer
//!
//! Today a host that lacks the image gets all of it, even when it already has
//! most of its layers (a new build on the same base). [`Plan`] is where that
//! decision lives. Sending only the missing layers would take:
//!
//! - the host's answer ([`Presence`]) growing a `layers` field: the chain IDs of
//!   the layers its engine has. The engine API has no "list layers", so the host
//!   would read `RootFS.Layers` of its images (`GET /images/json`, then inspect)
//!   and compute chain IDs; the local side gets its own from one inspect;
//! - a [`Plan::Layers`]-like variant naming the layers to send;
//! - a filter between the export stream and the compressor that rewrites the
//!   docker-archive tar: keeps `manifest.json`, the image config and the layer
//!   entries the host lacks, and drops the others;
//! - an engine that accepts such an archive: the graph-driver image store (this
//!   machine's Docker 20.10 with overlay drivers) looks each layer up by chain ID
//!   on load and reads a layer's file only when the layer is missing, which is what
//!   makes this work; the containerd image store (default in recent Docker) imports
//!   through containerd, which wants every blob the manifest names, so there the
//!   host would have to be told to fetch missing blobs differently. The host's
//!   answer would therefore also say which store it runs, and the plan would fall
//!   back to the whole image where filtering cannot work;
//! - a test with two builds sharing a large base, asserting the bytes sent are
//!   about the size of the differing layer.

mod host;
mod local;
mod ship;

use serde::{Deserialize, Serialize};

pub use host::{HostEngine, HostImageError};
pub use local::{LocalImage, NotLocal};
pub use ship::{Shipment, ship_all};

/// What `teal image has ID` prints (one JSON line): whether the host's engine
/// has the image. New fields must be optional, so an older teal on either side
/// still understands the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub id: String,
    pub present: bool,
}

/// What has to travel to a host, from its [`Presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The host has the image: nothing travels.
    Skip,
    /// The host lacks it: the whole image travels.
    Whole,
    // Layers { missing: Vec<String> } goes here; see the module docs.
}

impl Plan {
    pub fn of(presence: &Presence) -> Plan {
        if presence.present {
            Plan::Skip
        } else {
            Plan::Whole
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_decides_the_plan_and_tolerates_new_fields() {
        let answer: Presence =
            serde_json::from_str(r#"{"id":"sha256:ab","present":true,"layers":["x"]}"#).unwrap();
        assert_eq!(Plan::of(&answer), Plan::Skip);
        let answer = Presence {
            id: "sha256:ab".into(),
            present: false,
        };
        assert_eq!(Plan::of(&answer), Plan::Whole);
    }
}
