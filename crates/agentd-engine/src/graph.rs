//! A loaded workflow with what the walk needs besides the workflow itself: loop-edge indices,
//! compiled `llm_infer` contracts, and every child workflow its `call`, `parallel` and `map`
//! nodes name, loaded and validated once per parent load (04 §8), recursively, with cycles
//! between files refused at load time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_intel::OutputContract;
use agentd_workflow::{LoadFailure, NodeKind, SourceFile, ValidateOptions, Workflow};

use crate::BuildError;

/// A workflow ready to walk.
pub(crate) struct Graph {
    pub workflow: Arc<Workflow>,
    /// Indices of loop edges (`max_iterations`), the only edges with counters.
    pub loop_edges: Vec<usize>,
    /// Output contracts of `llm_infer` nodes by node id.
    pub contracts: HashMap<String, OutputContract>,
    /// Child workflows by the literal `workflow` string of the composing node.
    pub children: HashMap<String, ChildLoad>,
}

/// A child workflow, or why it could not be loaded (reported when a node runs it, 04 §8).
pub(crate) type ChildLoad = Result<Arc<Graph>, LoadError>;

/// Why a child workflow could not be loaded.
#[derive(Debug, Clone)]
pub(crate) enum LoadError {
    /// ``read child workflow <path>: <err>``
    Read { path: String, detail: String },
    /// ``parse child <path>: <err>``
    Parse { path: String, detail: String },
    /// ``child <path> failed validation`` (+ the first diagnostic, extension)
    Invalid { path: String, detail: String },
}

impl LoadError {
    /// The failure text of 04 §8 (without the ``call `<id>`: `` prefix).
    pub fn text(&self) -> String {
        match self {
            LoadError::Read { path, detail } => format!("read child workflow {path}: {detail}"),
            LoadError::Parse { path, detail } => format!("parse child {path}: {detail}"),
            LoadError::Invalid { path, detail } => format!("child {path} failed validation: {detail}"),
        }
    }
}

/// Reads schema files for child validation from disk.
struct DiskFiles;

impl agentd_workflow::FileSource for DiskFiles {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Loads graphs, caching children by canonical path and tracking the chain being loaded.
pub(crate) struct Loader<'a> {
    cwd: &'a Path,
    loaded: HashMap<PathBuf, ChildLoad>,
    chain: Vec<PathBuf>,
}

impl<'a> Loader<'a> {
    pub fn new(cwd: &'a Path) -> Loader<'a> {
        Loader { cwd, loaded: HashMap::new(), chain: Vec::new() }
    }

    /// Builds the graph of `workflow` and, recursively, of every child it names.
    pub fn graph(&mut self, workflow: Arc<Workflow>) -> Result<Graph, BuildError> {
        let own_path = workflow.provenance.path.as_ref().and_then(|p| p.canonicalize().ok());
        if let Some(path) = &own_path {
            self.chain.push(path.clone());
        }
        let result = self.graph_inner(workflow);
        if own_path.is_some() {
            self.chain.pop();
        }
        result
    }

    fn graph_inner(&mut self, workflow: Arc<Workflow>) -> Result<Graph, BuildError> {
        let contracts = crate::output_contracts(&workflow, self.cwd)?;
        let loop_edges =
            workflow.edges.iter().enumerate().filter(|(_, e)| e.max_iterations.is_some()).map(|(i, _)| i).collect();
        let mut children = HashMap::new();
        for literal in child_paths(&workflow) {
            if children.contains_key(&literal) {
                continue;
            }
            let load = self.child(&workflow, &literal)?;
            children.insert(literal, load);
        }
        Ok(Graph { workflow, loop_edges, contracts, children })
    }

    fn child(&mut self, parent: &Workflow, literal: &str) -> Result<ChildLoad, BuildError> {
        let path = resolve(literal, self.cwd, parent.provenance.path.as_deref());
        let shown = path.display().to_string();
        let Ok(canonical) = path.canonicalize() else {
            let detail = match std::fs::metadata(&path) {
                Err(e) => e.to_string(),
                Ok(_) => "cannot resolve the path".to_string(),
            };
            return Ok(Err(LoadError::Read { path: shown, detail }));
        };
        if let Some(at) = self.chain.iter().position(|p| *p == canonical) {
            let mut cycle: Vec<String> = self.chain[at..].iter().map(|p| p.display().to_string()).collect();
            cycle.push(canonical.display().to_string());
            return Err(BuildError::Composition(format!(
                "sub-workflow cycle: {} (a workflow may not call itself, directly or through others)",
                cycle.join(" → ")
            )));
        }
        if let Some(done) = self.loaded.get(&canonical) {
            return Ok(done.clone());
        }
        let load = match load_file(&canonical, &shown, self.cwd) {
            Err(e) => Err(e),
            Ok(workflow) => {
                self.chain.push(canonical.clone());
                let built = self.graph_inner(Arc::new(workflow));
                self.chain.pop();
                match built {
                    Ok(graph) => Ok(Arc::new(graph)),
                    Err(BuildError::Schema(detail)) => Err(LoadError::Invalid { path: shown, detail }),
                    Err(other) => return Err(other),
                }
            }
        };
        self.loaded.insert(canonical, load.clone());
        Ok(load)
    }
}

/// 04 §8 loading: absolute, else relative to the working directory, then (extension) to the
/// parent workflow file's directory.
fn resolve(literal: &str, cwd: &Path, parent: Option<&Path>) -> PathBuf {
    let given = Path::new(literal);
    if given.is_absolute() {
        return given.to_path_buf();
    }
    let from_cwd = cwd.join(given);
    if from_cwd.exists() {
        return from_cwd;
    }
    match parent.and_then(Path::parent) {
        Some(dir) if dir.join(given).exists() => dir.join(given),
        _ => from_cwd,
    }
}

fn load_file(path: &Path, shown: &str, cwd: &Path) -> Result<Workflow, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Read { path: shown.to_string(), detail: e.to_string() })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| LoadError::Parse { path: shown.to_string(), detail: "the file is not valid UTF-8".to_string() })?;
    let source = SourceFile::new(shown.to_string(), Some(path.to_path_buf()), text);
    let options = ValidateOptions { mcp_stdio: false, cwd: cwd.to_path_buf(), files: &DiskFiles };
    let first = |diagnostics: &[agentd_workflow::Diagnostic]| {
        diagnostics.first().map_or_else(String::new, |d| {
            let at = d.location(&source).map_or_else(String::new, |l| format!("{shown}:{}:{}: ", l.line, l.column));
            format!("{at}error[{}]: {}", d.code, d.message)
        })
    };
    agentd_workflow::load(&source, &options).map_err(|failure| match failure {
        LoadFailure::Load(diagnostics) => LoadError::Parse { path: shown.to_string(), detail: first(&diagnostics) },
        LoadFailure::Invalid(rejected) => {
            LoadError::Invalid { path: shown.to_string(), detail: first(&rejected.errors) }
        }
    })
}

/// Every literal child path a workflow's composing nodes name, in node order.
fn child_paths(workflow: &Workflow) -> Vec<String> {
    let mut paths = Vec::new();
    for node in &workflow.nodes {
        match &node.kind {
            NodeKind::Call(c) => paths.push(c.workflow.clone()),
            NodeKind::Map(c) => paths.push(c.workflow.clone()),
            NodeKind::Parallel(c) => paths.extend(c.branches.iter().map(|b| b.workflow.clone())),
            _ => {}
        }
    }
    paths
}
