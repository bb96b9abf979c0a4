//! The agentd workflow model: TOML with spans → parsed document → validated [`Workflow`].
//!
//! Architecture invariant: this crate performs no I/O of its own. Files the validator inspects
//! (schema files) are read through [`FileSource`], supplied by the caller.
//!
//! ```
//! use agentd_workflow::{SourceFile, ValidateOptions, NoFiles, load};
//! let text = r#"
//! name = "hello"
//! [[start_nodes]]
//! name = "main"
//! source = "manual"
//! [[nodes]]
//! id = "done"
//! type = "terminate"
//! "#;
//! let source = SourceFile::new("hello.toml", None, text.to_string());
//! let options = ValidateOptions { mcp_stdio: false, cwd: "/".into(), files: &NoFiles };
//! let workflow = load(&source, &options).expect("valid");
//! assert_eq!(workflow.nodes[0].id, "done");
//! ```

pub mod diagnostic;
pub mod load;
pub mod model;
pub mod schedule;
pub mod schema_walk;
pub mod source;
pub mod template;
pub mod validate;
pub mod value_path;
pub mod workflow;

pub use diagnostic::{Diagnostic, Severity};
pub use load::parse_document;
pub use model::*;
pub use source::{Location, SourceFile};
pub use template::Template;
pub use validate::{FileSource, NoFiles, Rejected, ValidateOptions, validate};
pub use value_path::{ContextPath, DataPath};
pub use workflow::*;

/// Why a document did not become a workflow.
#[derive(Debug, Clone)]
pub enum LoadFailure {
    /// The document is not a well-formed workflow (TOML syntax, unknown keys, wrong types).
    Load(Vec<Diagnostic>),
    /// The document is well formed but fails validation.
    Invalid(Box<Rejected>),
}

/// Parses and validates in one step.
pub fn load(source: &SourceFile, options: &ValidateOptions<'_>) -> Result<Workflow, LoadFailure> {
    let raw = parse_document(source).map_err(LoadFailure::Load)?;
    validate(raw, source, options).map_err(LoadFailure::Invalid)
}
