/*
 * gentext: deterministic test input for pgzip's demo, tests and benchmark.
 *
 *   gentext [-r] [-s SEED] SIZE > file
 *
 * Writes exactly SIZE bytes (K, M, G suffixes are powers of 1024) to stdout. The same
 * SIZE and SEED give the same bytes on every machine: the generator uses its own PRNG
 * (splitmix64) and integer arithmetic only.
 *
 * Default: text that compresses like real prose and source code (gzip -6 gets about
 * 2.6:1, close to English text such as enwik8), so compression speed is representative.
 * All zeros or one repeated file would compress far faster than real data and flatter
 * every compressor; uniform random letters would be too slow and too incompressible.
 * So: a vocabulary of pseudo-random words drawn with a Zipf-like skew (a few words are
 * very common, most are rare, as in natural language), with repeated phrases, arranged
 * in prose paragraphs wrapped at 72 columns and in indented code-like blocks with
 * identifiers, calls, numbers and braces. A shorter output is a prefix of a longer one.
 *
 * -r: uniformly random bytes instead (incompressible).
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCABULARY 4096
#define MAX_WORD 14
#define WRAP 72

static uint64_t rng_state;

static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). The modulo bias is irrelevant for test data. */
static uint32_t below(uint32_t n) {
    return (uint32_t)(next_u64() % n);
}

static char words[VOCABULARY][MAX_WORD + 1];

/* Letters roughly by English frequency, so words look (and compress) like words. */
static const char letters[] =
    "eeeeeeeeeeeetttttttttaaaaaaaaoooooooiiiiiiinnnnnnnsssssshhhhhhrrrrrr"
    "ddddlllluuucccmmmwwffggyyppbbvkjxqz";

static void make_vocabulary(void) {
    for (int i = 0; i < VOCABULARY; i++) {
        /* Common words (low index) are short, rare ones longer, as in natural text. */
        int len = 1 + (int)below(3) + (i < 64 ? 0 : (int)below(4)) + (i < 1024 ? 0 : (int)below(5));
        for (int k = 0; k < len; k++) {
            words[i][k] = letters[below(sizeof letters - 1)];
        }
        words[i][len] = '\0';
    }
}

/* A word index with P(rank r) roughly proportional to 1/(r+1) (Zipf, s = 1): pick a
 * power-of-two bucket uniformly, then a rank inside it uniformly. */
static const char *zipf_word(void) {
    int buckets = 12; /* 2^12 = VOCABULARY */
    int b = (int)below((uint32_t)buckets);
    uint32_t lo = (1u << b) - 1;
    uint32_t span = 1u << b;
    uint32_t r = lo + below(span);
    if (r >= VOCABULARY) {
        r = VOCABULARY - 1;
    }
    return words[r];
}

/* Real text repeats phrases, not just words, and that is what LZ77 matches feed on.
 * So a quarter of the time a word starts a copy of 2-6 words from the recent past. */
#define RECENT 256
static const char *recent[RECENT];
static uint32_t recent_pos, copy_from, copy_left;

static const char *next_word(void) {
    const char *w;
    if (copy_left == 0 && recent_pos > RECENT && below(4) == 0) {
        copy_from = recent_pos - 1 - below(RECENT - 8);
        copy_left = 2 + below(5);
    }
    if (copy_left > 0) {
        w = recent[copy_from++ % RECENT];
        copy_left--;
    } else {
        w = zipf_word();
    }
    recent[recent_pos++ % RECENT] = w;
    return w;
}

/* Output buffer, flushed when full; stops the program once SIZE bytes are out. */
static char buf[1 << 16];
static size_t buf_len;
static uint64_t remaining;

static void flush_buf(void) {
    size_t n = buf_len;
    if (n > remaining) {
        n = (size_t)remaining;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDOUT_FILENO, buf + off, n - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("gentext: write");
            exit(1);
        }
        off += (size_t)w;
    }
    remaining -= n;
    buf_len = 0;
    if (remaining == 0) {
        exit(0);
    }
}

static void put(const char *s, size_t n) {
    if (buf_len + n > sizeof buf) {
        flush_buf();
    }
    memcpy(buf + buf_len, s, n);
    buf_len += n;
}

static void puts_(const char *s) {
    put(s, strlen(s));
}

static void paragraph(void) {
    int col = 0;
    int sentences = 2 + (int)below(6);
    for (int s = 0; s < sentences; s++) {
        int n = 4 + (int)below(16);
        for (int w = 0; w < n; w++) {
            char word[MAX_WORD + 3];
            strcpy(word, next_word());
            if (w == 0 && word[0] >= 'a' && word[0] <= 'z') {
                word[0] = (char)(word[0] - 'a' + 'A');
            }
            if (w == n - 1) {
                strcat(word, ".");
            } else if (below(10) == 0) {
                strcat(word, ",");
            }
            int len = (int)strlen(word);
            if (col > 0 && col + 1 + len > WRAP) {
                puts_("\n");
                col = 0;
            } else if (col > 0) {
                puts_(" ");
                col++;
            }
            put(word, (size_t)len);
            col += len;
        }
    }
    puts_("\n\n");
}

static void code_block(void) {
    char line[256];
    int depth = 0;
    int lines = 3 + (int)below(20);
    snprintf(line, sizeof line, "fn %s_%s(%s: u32) {\n", next_word(), next_word(), next_word());
    puts_(line);
    depth = 1;
    for (int l = 0; l < lines; l++) {
        int indent = depth;
        switch (below(6)) {
        case 0:
            snprintf(line, sizeof line, "let %s = %s(%s, %u);\n", next_word(), next_word(),
                     next_word(), below(1000));
            break;
        case 1:
            if (depth < 4) {
                snprintf(line, sizeof line, "if %s > %u {\n", next_word(), below(100));
                depth++;
                break;
            }
            /* fall through */
        case 2:
            if (depth > 1) {
                snprintf(line, sizeof line, "}\n");
                indent = --depth;
                break;
            }
            /* fall through */
        case 3:
            snprintf(line, sizeof line, "%s.%s(&%s);\n", next_word(), next_word(), next_word());
            break;
        case 4:
            snprintf(line, sizeof line, "// %s %s %s %s\n", next_word(), next_word(),
                     next_word(), next_word());
            break;
        default:
            snprintf(line, sizeof line, "return %s + 0x%x;\n", next_word(), below(65536));
            break;
        }
        for (int d = 0; d < indent; d++) {
            puts_("    ");
        }
        puts_(line);
    }
    while (depth > 0) {
        depth--;
        for (int d = 0; d < depth; d++) {
            puts_("    ");
        }
        puts_("}\n");
    }
    puts_("\n");
}

static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        return false;
    }
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K') {
        shift = 10;
    } else if (*end == 'm' || *end == 'M') {
        shift = 20;
    } else if (*end == 'g' || *end == 'G') {
        shift = 30;
    }
    if (shift != 0) {
        end++;
    }
    if (*end != '\0' || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

int main(int argc, char **argv) {
    bool random_bytes = false;
    uint64_t seed = 1;
    int opt;
    while ((opt = getopt(argc, argv, "rs:")) != -1) {
        switch (opt) {
        case 'r':
            random_bytes = true;
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: gentext [-r] [-s SEED] SIZE\n");
            return 2;
        }
    }
    if (optind + 1 != argc || !parse_size(argv[optind], &remaining)) {
        fprintf(stderr, "usage: gentext [-r] [-s SEED] SIZE\n");
        return 2;
    }
    if (remaining == 0) {
        return 0;
    }
    rng_state = seed;
    if (random_bytes) {
        for (;;) {
            /* Byte by byte, little-endian, so the output does not depend on the host. */
            uint64_t v = next_u64();
            char bytes[8];
            for (int k = 0; k < 8; k++) {
                bytes[k] = (char)(v >> (8 * k));
            }
            put(bytes, sizeof bytes);
        }
    }
    make_vocabulary();
    for (;;) {
        if (below(3) == 0) {
            code_block();
        } else {
            paragraph();
        }
    }
}
