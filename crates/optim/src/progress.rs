//! Progress bars of the learning loops (dictionary learning, network training): drawn on
//! stderr, only when the loop's `progress` setting is on and stderr is a terminal.
//!
//! With this crate's `progress` feature off (the algorithm crates forward their own `progress`
//! feature, on by default, to it), [`Bar`] draws nothing and `indicatif` is not built; the
//! `progress` settings of the parameter types stay and are then ignored.
//!
//! # Example
//! ```
//! use latent_optim::progress::Bar;
//! let bar = Bar::new(false, 10, "my loop"); // hidden: nothing is drawn
//! for i in 0..10 {
//!     bar.set_message(format!("step {i}"));
//!     bar.inc(1);
//! }
//! bar.finish_and_clear();
//! ```

use std::borrow::Cow;

/// The default template: `{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})`.
pub const DEFAULT_TEMPLATE: &str = "{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})";

/// A progress bar, or nothing (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Bar {
    #[cfg(feature = "progress")]
    inner: indicatif::ProgressBar,
}

impl Bar {
    /// A bar of `len` steps titled `prefix`, drawn when `show` is true and stderr is a terminal.
    pub fn new(show: bool, len: u64, prefix: &'static str) -> Self {
        Self::with_template(show, len, DEFAULT_TEMPLATE, prefix)
    }

    /// As [`Bar::new`] with an `indicatif` template (`{prefix}`, `{bar:30}`, `{pos}`, `{len}`,
    /// `{msg}`, `{eta}`, `{elapsed_precise}`, ...); a template that does not parse falls back
    /// to indicatif's default style.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub fn with_template(show: bool, len: u64, template: &str, prefix: &'static str) -> Self {
        #[cfg(feature = "progress")]
        {
            use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
            use std::io::IsTerminal;
            if !show || !std::io::stderr().is_terminal() {
                return Self { inner: ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden()) };
            }
            let inner = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                inner.set_style(style.progress_chars("=> "));
            }
            inner.set_prefix(prefix);
            Self { inner }
        }
        #[cfg(not(feature = "progress"))]
        Self {}
    }

    /// A bar that never draws.
    pub fn hidden() -> Self {
        #[cfg(feature = "progress")]
        {
            Self { inner: indicatif::ProgressBar::hidden() }
        }
        #[cfg(not(feature = "progress"))]
        Self {}
    }

    /// Advance by `delta` steps.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub fn inc(&self, delta: u64) {
        #[cfg(feature = "progress")]
        self.inner.inc(delta);
    }

    /// Jump to step `pos` (e.g. when a run is resumed).
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub fn set_position(&self, pos: u64) {
        #[cfg(feature = "progress")]
        self.inner.set_position(pos);
    }

    /// Replace the message shown after the bar.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub fn set_message(&self, msg: impl Into<Cow<'static, str>>) {
        #[cfg(feature = "progress")]
        self.inner.set_message(msg);
    }

    /// Remove the bar from the terminal.
    pub fn finish_and_clear(&self) {
        #[cfg(feature = "progress")]
        self.inner.finish_and_clear();
    }
}
