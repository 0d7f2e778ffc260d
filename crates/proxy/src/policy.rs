//! A service's request policy, set with its routes by `install`: the largest
//! request body it takes (`max_body`: 413 past it, the client's error) and its
//! own pages for the 502, 503 and 504 the proxy answers itself (teal's plain
//! text when it has none). A leaf: the routes and every pool of a service
//! share one `PolicyCell`; looking it up by Host is `routes/policy.rs`.
//!
//! The owner reads and checks the page files; the proxy only holds bytes.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;

/// Largest error page the proxy holds (nginx serves any size from disk; a
/// page held in memory per service is kept small).
pub const MAX_ERROR_PAGE: usize = 64 * 1024;

/// What a service allows and answers, besides its routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestPolicy {
    /// Largest request body in bytes; None: no limit.
    pub max_body: Option<u64>,
    /// Pages for the proxy's own 502, 503 and 504.
    pub error_pages: ErrorPages,
}

/// HTML pages for the proxy's own 502, 503 and 504 answers, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPages {
    /// 502, 503, 504 in that order.
    pages: [Option<Bytes>; 3],
}

/// A page the proxy cannot hold.
#[derive(Debug, thiserror::Error)]
pub enum ErrorPageError {
    #[error("error pages exist for 502, 503 and 504 only (not {0})")]
    Status(u16),
    #[error("error page for {status} is {size} bytes; at most {MAX_ERROR_PAGE} are allowed")]
    TooBig { status: u16, size: usize },
}

impl ErrorPages {
    /// The statuses a page can be given for.
    pub const STATUSES: [u16; 3] = [502, 503, 504];

    fn index(status: u16) -> Option<usize> {
        Self::STATUSES.iter().position(|&s| s == status)
    }

    /// Sets the page for `status` (502, 503 or 504), at most
    /// [`MAX_ERROR_PAGE`] bytes.
    pub fn set(&mut self, status: u16, page: Bytes) -> Result<(), ErrorPageError> {
        let index = Self::index(status).ok_or(ErrorPageError::Status(status))?;
        if page.len() > MAX_ERROR_PAGE {
            return Err(ErrorPageError::TooBig {
                status,
                size: page.len(),
            });
        }
        self.pages[index] = Some(page);
        Ok(())
    }

    /// The page for `status`, if the service has one.
    pub fn get(&self, status: u16) -> Option<&Bytes> {
        Self::index(status).and_then(|index| self.pages[index].as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.pages.iter().all(Option::is_none)
    }
}

/// A service's policy, shared by its routes and every pool it gets, so that
/// a 502 or 504 finds the pages through the request's pool. Swapped whole
/// by `install`.
pub(crate) type PolicyCell = Arc<ArcSwap<RequestPolicy>>;
