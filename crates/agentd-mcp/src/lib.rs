//! The MCP client (08 §1): named servers over stdio and streamable HTTP.
