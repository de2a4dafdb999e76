fn main() {
    // Test subjects are laid out exactly like the real one.
    muen_buildsupport::bare_metal_bins("../subject/link.ld");
}
