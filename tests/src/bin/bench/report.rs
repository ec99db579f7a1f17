//! What the bench checks: targets with PASS/MISS, printed at the end. A MISS does not fail the
//! process (this is a report); a section that cannot run does.

pub struct Target {
    pub name: String,
    pub pass: bool,
    pub detail: String,
}

#[derive(Default)]
pub struct Report {
    pub targets: Vec<Target>,
    /// Sections that could not run: (section, why).
    pub failures: Vec<(String, String)>,
}

impl Report {
    pub fn target(&mut self, name: impl Into<String>, pass: bool, detail: impl Into<String>) {
        self.targets.push(Target {
            name: name.into(),
            pass,
            detail: detail.into(),
        });
    }

    pub fn print(&self) {
        println!("== targets");
        for t in &self.targets {
            let mark = if t.pass { "PASS" } else { "MISS" };
            println!("  {mark}  {}  ({})", t.name, t.detail);
        }
        if !self.failures.is_empty() {
            println!("\n== could not run");
            for (section, why) in &self.failures {
                println!("  {section}:");
                for l in why.lines() {
                    println!("    {l}");
                }
            }
        }
    }
}
