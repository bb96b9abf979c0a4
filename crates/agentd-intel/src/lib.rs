//! Intelligence backends (06): provider wire formats, JSON-RPC transports and the scripted backend.
