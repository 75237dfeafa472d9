//! Server-Sent Events framing: bytes in, `data:` payloads out.

/// Splits a byte stream into SSE events, tolerating arbitrary chunking.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
    pending: Vec<u8>,
}

impl SseParser {
    /// Feeds bytes; returns the `data` of every event completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        // Keep an incomplete UTF-8 sequence for the next chunk.
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        self.buffer.push_str(&text.replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let raw: String = self.buffer.drain(..end + 2).collect();
            let data: Vec<&str> = raw
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buffer.trim().is_empty() || !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_chunking() {
        let stream = "data: {\"a\":1}\n\ndata: {\"b\":\"é\"}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        for size in 1..stream.len() {
            let mut p = SseParser::default();
            let mut out = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                out.extend(p.feed(chunk));
            }
            assert_eq!(
                out,
                vec!["{\"a\":1}", "{\"b\":\"é\"}", "[DONE]"],
                "chunk size {size}"
            );
            assert!(!p.has_partial());
        }
    }
}
