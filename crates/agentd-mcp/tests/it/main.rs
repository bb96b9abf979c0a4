//! Integration tests of agentd-mcp: the hub against real servers on loopback (the npm
//! `@modelcontextprotocol/server-everything` and our own scripted server), over stdio and
//! streamable HTTP.

mod everything;
mod harness;
mod scripted;
mod scripted_binary;
