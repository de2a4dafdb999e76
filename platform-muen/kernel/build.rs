//! Link the kernel as a freestanding static ELF with `link.ld`.

fn main() {
    muen_buildsupport::bare_metal_bins("link.ld");
}
