//! The `--dashboard ADDR|off` flag value.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// Where to serve the dashboard, or nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddr(pub Option<SocketAddr>);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(ListenAddr(None));
        }
        // Accepts names too (`localhost:8088`); the first address wins.
        let addr = s
            .to_socket_addrs()
            .map_err(|e| format!("expected HOST:PORT or `off`, got {s:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{s:?} resolves to no address"))?;
        Ok(ListenAddr(Some(addr)))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_off() {
        assert_eq!(
            "127.0.0.1:8088".parse::<ListenAddr>().unwrap().0,
            Some(SocketAddr::from(([127, 0, 0, 1], 8088)))
        );
        assert_eq!("OFF".parse::<ListenAddr>().unwrap().0, None);
        assert!("8088".parse::<ListenAddr>().is_err());
    }
}
