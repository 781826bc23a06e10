/*
 * A stand-in for Windows' bcryptprimitives.dll, for the wine smoke test in scripts/windows-check ONLY.
 * Never ship it, and never put it next to a weft.exe that runs on real Windows.
 *
 * Why: since Rust 1.78, std on Windows gets its random bytes (HashMap seeds, among others) from
 * `ProcessPrng` in bcryptprimitives.dll, which it loads when the program starts. Debian's wine 8.0
 * has no such DLL, so every Rust >= 1.78 program dies before main under it (exit code 53).
 * Wine does have advapi32's `SystemFunction036` (RtlGenRandom), so this DLL exports `ProcessPrng`
 * on top of it. scripts/windows-check builds it with x86_64-w64-mingw32-gcc and puts it next to the
 * copy of weft.exe that wine runs; Windows loads a DLL from the program's folder first.
 * Newer wine (9.0 and later) ships bcryptprimitives.dll itself; the shim is harmless there.
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32
 *
 * On x86-64 WINAPI adds no name decoration, so dllexport alone exports the plain name
 * `ProcessPrng`; no .def file is needed.
 */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Same signature as the real one: fills `data` with `len` random bytes; always TRUE on Windows. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
