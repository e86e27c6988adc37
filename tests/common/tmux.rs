//! A terminal for tests that drive interactive programs (redis-cli) as a
//! person would: tmux with a server of its own, killed on drop.

use std::process::Command;

use super::eventually;

/// A tmux server of its own, named after something unique to the test.
pub struct Tmux(pub String);

impl Tmux {
    /// Runs a tmux command against this server; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("tmux is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a 120x30 terminal.
    pub fn start(name: String, command: &str) -> Tmux {
        let tmux = Tmux(name);
        tmux.run(&["new-session", "-d", "-x", "120", "-y", "30", command]);
        tmux
    }

    /// Waits until the screen shows `want`; the screen then.
    pub fn screen(&self, want: &str) -> String {
        eventually(&format!("{want:?} on the screen"), || {
            let text = self.run(&["capture-pane", "-p"]);
            text.contains(want).then_some(text)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
