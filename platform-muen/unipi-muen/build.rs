fn main() {
    // Laid out like every subject of the workspace.
    muen_buildsupport::bare_metal_bins("../subject/link.ld");
}
