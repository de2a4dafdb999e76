//! `muen-tools`: host tools of unipi-rs.
//!
//! ```text
//! muen-tools cspec --elf ELF --name NAME -o CSPEC [--ram MIB] [--net DEV]...
//!                  [--channel-size BYTES] [--bootparams S] [--memory LOGICAL:FILE_OR_SIZE]...
//!                  [--generation ddece096|eb7b089b]
//! muen-tools pack  --kernel KERNEL_ELF --system SYSTEM_XML -o SYSTEM_ELF [--multiboot true]
//! muen-tools image --system SYSTEM_XML -o IMAGE        (the image alone)
//! ```

mod cspec;
mod elf;
mod pack;
mod system;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  muen-tools cspec --elf ELF --name NAME -o CSPEC [--ram MIB] [--net DEV]... \\\n\
         \x20                  [--channel-size BYTES] [--bootparams S] [--memory LOGICAL:FILE|SIZE]...\n\
         \x20                  [--generation ddece096|eb7b089b]   (Muen toolchain generation; docs/muen.md)\n\
         \x20 muen-tools pack --kernel KERNEL_ELF --system SYSTEM_XML -o SYSTEM_ELF [--multiboot true]\n\
         \x20 muen-tools image --system SYSTEM_XML -o IMAGE"
    );
    ExitCode::from(2)
}

struct Args {
    items: Vec<(String, String)>,
}

impl Args {
    fn parse(argv: &[String]) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .or_else(|| a.strip_prefix('-'))
                .ok_or(format!("unexpected argument '{a}'"))?;
            let (k, v) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (
                    key.to_string(),
                    it.next().ok_or(format!("--{key} needs a value"))?.clone(),
                ),
            };
            items.push((k, v));
        }
        Ok(Args { items })
    }
    fn one(&self, k: &str) -> Option<&str> {
        self.items
            .iter()
            .rev()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }
    fn req(&self, k: &str) -> Result<&str, String> {
        self.one(k).ok_or(format!("--{k} is required"))
    }
    fn all(&self, k: &str) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(move |(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(argv: &[String]) -> Result<(), String> {
    let Some((cmd, rest)) = argv.split_first() else {
        return Err(String::new());
    };
    let a = Args::parse(rest)?;
    match cmd.as_str() {
        "cspec" => {
            let elf_path = PathBuf::from(a.req("elf")?);
            let bytes =
                std::fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
            let elf = elf::Elf::parse(&bytes).map_err(|e| e.to_string())?;
            let mut memory = Vec::new();
            for m in a.all("memory") {
                let (logical, what) = m.split_once(':').ok_or(format!(
                    "--memory {m}: expected LOGICAL:FILE or LOGICAL:SIZE"
                ))?;
                let size = match cspec::parse_number(what) {
                    Ok(n) => n,
                    Err(_) => std::fs::metadata(what)
                        .map_err(|e| format!("{what}: {e}"))?
                        .len(),
                };
                memory.push((logical.to_string(), size));
            }
            let ram_mib = cspec::parse_number(a.one("ram").unwrap_or("512"))?;
            let opts = cspec::GenOptions {
                name: a.req("name")?.to_string(),
                elf_filename: elf_path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or("bad ELF file name")?
                    .to_string(),
                ram_bytes: ram_mib.checked_mul(1 << 20).ok_or("--ram too large")?,
                channel_size: match a.one("channel-size") {
                    Some(v) => cspec::parse_number(v)?,
                    None => cspec::DEFAULT_CHANNEL_SIZE,
                },
                nets: a.all("net").map(str::to_string).collect(),
                bootparams: a.one("bootparams").unwrap_or("").to_string(),
                memory,
                generation: match a.one("generation") {
                    Some(g) => cspec::Generation::from_name(g)?,
                    None => cspec::Generation::default(),
                },
            };
            let comp = cspec::generate(&elf, &opts)?;
            write(Path::new(a.req("o")?), cspec::to_xml(&comp).as_bytes())
        }
        "pack" | "image" => {
            let sys_path = PathBuf::from(a.req("system")?);
            let text = std::fs::read_to_string(&sys_path)
                .map_err(|e| format!("{}: {e}", sys_path.display()))?;
            let base = sys_path.parent().unwrap_or(Path::new("."));
            let sys = system::SystemDesc::parse(&text, base)?;
            let image = pack::build_image(&sys)?;
            let out = if cmd == "pack" {
                let kpath = a.req("kernel")?;
                let kernel = std::fs::read(kpath).map_err(|e| format!("{kpath}: {e}"))?;
                pack::append_to_kernel(&kernel, &image, a.one("multiboot") == Some("true"))?
            } else {
                image
            };
            write(Path::new(a.req("o")?), &out)
        }
        _ => Err(String::new()),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => usage(),
        Err(e) => {
            eprintln!("muen-tools: {e}");
            ExitCode::FAILURE
        }
    }
}
