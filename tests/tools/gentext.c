/* The deterministic input of the word-count benchmark (issue 7): English-like
 * text with Zipf-distributed words, mixed case, punctuation and 60-100
 * character lines. `gentext BYTES [SEED]` writes exactly BYTES bytes (suffix
 * k, M or G: powers of 2); the same arguments give the same bytes on any
 * machine, and a shorter run is a prefix of a longer one with the same seed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything random comes from integer arithmetic (splitmix64 for the
 * vocabulary, wyrand for the stream, an integer alias table), never rand()
 * or floating point, so the output cannot depend on the libc or the CPU. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The stream: wyrand (Wang Yi's), one 64x64->128 multiply per draw and a
 * state that only adds a constant, so consecutive draws do not wait on
 * each other (two splitmix64 draws per token were ~15% of the time). */
static inline uint64_t wyrand(uint64_t *s)
{
	*s += 0xa0761d6478bd642fULL;
	unsigned __int128 m = (unsigned __int128)*s * (*s ^ 0xe7037ed1a0b428dbULL);
	return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* The most frequent words, roughly in order of frequency in English: they
 * take the top Zipf ranks. A few carry non-ASCII letters (UTF-8), which the
 * benchmark's word definition (A-Z a-z only) splits. */
static const char *const common[] = {
	"the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
	"are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this", "from", "or",
	"had", "by", "not", "word", "but", "what", "some", "we", "can", "out", "other", "were",
	"all", "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which",
	"do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write",
	"would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has",
	"look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most",
	"people", "my", "over", "know", "water", "than", "call", "first", "who", "may", "down",
	"side", "been", "now", "find", "any", "new", "work", "part", "take", "get", "place",
	"made", "live", "where", "after", "back", "little", "only", "round", "man", "year",
	"came", "show", "every", "good", "me", "give", "our", "under", "name", "very", "through",
	"just", "form", "sentence", "great", "think", "say", "help", "low", "line", "differ",
	"turn", "cause", "much", "mean", "before", "move", "right", "boy", "old", "too", "same",
	"tell", "does", "set", "three", "want", "air", "well", "also", "play", "small", "end",
	"put", "home", "read", "hand", "port", "large", "spell", "add", "even", "land", "here",
	"must", "big", "high", "such", "follow", "act", "why", "ask", "men", "change", "went",
	"light", "kind", "off", "need", "house", "picture", "try", "us", "again", "animal",
	"point", "mother", "world", "near", "build", "self", "earth", "father", "head", "stand",
	"own", "page", "should", "country", "found", "answer", "school", "grow", "study", "still",
	"learn", "plant", "cover", "food", "sun", "four", "between", "state", "keep", "eye",
	"never", "last", "let", "thought", "city", "tree", "cross", "farm", "hard", "start",
	"might", "story", "saw", "far", "sea", "draw", "left", "late", "run", "don't", "while",
	"press", "close", "night", "real", "life", "few", "north", "open", "seem", "together",
	"next", "white", "children", "begin", "got", "walk", "example", "ease", "paper", "group",
	"always", "music", "those", "both", "mark", "often", "letter", "until", "mile", "river",
	"car", "feet", "care", "second", "book", "carry", "took", "science", "eat", "room",
	"friend", "began", "idea", "fish", "mountain", "stop", "once", "base", "hear", "horse",
	"cut", "sure", "watch", "color", "face", "wood", "main", "enough", "plain", "girl",
	"usual", "young", "ready", "above", "ever", "red", "list", "though", "feel", "talk",
	"bird", "soon", "body", "dog", "family", "direct", "pose", "leave", "song", "measure",
	"door", "product", "black", "short", "numeral", "class", "wind", "question", "happen",
	"complete", "ship", "area", "half", "rock", "order", "fire", "south", "problem", "piece",
	"told", "knew", "pass", "since", "top", "whole", "king", "space", "heard", "best", "hour",
	"better", "true", "during", "hundred", "five", "remember", "step", "early", "hold",
	"west", "ground", "interest", "reach", "fast", "verb", "sing", "listen", "six", "table",
	"travel", "less", "morning", "ten", "simple", "several", "vowel", "toward", "war", "lay",
	"against", "pattern", "slow", "center", "love", "person", "money", "serve", "appear",
	"road", "map", "rain", "rule", "govern", "pull", "cold", "notice", "voice", "unit",
	"power", "town", "fine", "certain", "fly", "fall", "lead", "cry", "dark", "machine",
	"note", "wait", "plan", "figure", "star", "box", "noun", "field", "rest", "correct",
	"able", "pound", "done", "beauty", "drive", "stood", "contain", "front", "teach", "week",
	"final", "gave", "green", "oh", "quick", "develop", "ocean", "warm", "free", "minute",
	"strong", "special", "mind", "behind", "clear", "tail", "produce", "fact", "street",
	"inch", "multiply", "nothing", "course", "stay", "wheel", "full", "force", "blue",
	"object", "decide", "surface", "deep", "moon", "island", "foot", "system", "busy",
	"test", "record", "boat", "common", "gold", "possible", "plane", "stead", "dry", "wonder",
	"laugh", "thousand", "ago", "ran", "check", "game", "shape", "equate", "hot", "miss",
	"brought", "heat", "snow", "tire", "bring", "yes", "distant", "fill", "east", "paint",
	"language", "among", "caf\xc3\xa9", "na\xc3\xafve", "r\xc3\xa9sum\xc3\xa9", "fa\xc3\xa7" "ade",
	"responsibilities", "self-evident",
};
#define NCOMMON (sizeof common / sizeof common[0])

/* The rarer words are made of syllables, so that they look like words and
 * have the lengths of English words. */
static const char *const syl[] = {
	"ba", "be", "bi", "bo", "bu", "ca", "ce", "ci", "co", "cu", "da", "de", "di", "do", "du",
	"fa", "fe", "fi", "fo", "ga", "ge", "go", "ha", "he", "hi", "ho", "ja", "jo", "ka", "ki",
	"la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "mu", "na", "ne", "ni", "no", "pa",
	"pe", "pi", "po", "pu", "ra", "re", "ri", "ro", "ru", "sa", "se", "si", "so", "su", "ta",
	"te", "ti", "to", "tu", "va", "ve", "vi", "vo", "wa", "we", "wi", "ya", "yo", "za", "zo",
	"an", "en", "in", "on", "un", "ar", "er", "ir", "or", "ur", "al", "el", "il", "ol", "as",
	"es", "is", "os", "us", "at", "et", "it", "ot", "ent", "ant", "ster", "con", "pro",
	"dis", "com", "str", "th", "sh", "ch", "qu",
	/* not at the start of a word: */
	"ing", "ion", "tion", "ment", "ness", "ous", "ful", "less", "ble", "ck", "ght", "nd",
	"rt", "st", "mp", "nk", "ll", "ss", "tt",
};
#define NSYL_FIRST (NSYL - 19)
#define NSYL (sizeof syl / sizeof syl[0])

#define VOCAB 100000 /* distinct words */
#define SLOT 16      /* bytes per word; no word is longer */

static char words[VOCAB][SLOT];
static uint8_t wlen[VOCAB];
/* a bucket of the alias table: its own word below prob, else alias */
static struct bucket {
	uint32_t prob, alias;
} tab[VOCAB];

/* A small open-addressing set over the words made so far: the generated
 * words must differ from each other and from the common ones, or the
 * vocabulary would be smaller than VOCAB. */
#define SETBITS 18
static int32_t wset[1 << SETBITS];

static uint32_t slot_hash(const char *s, int n)
{
	uint64_t h = 1469598103934665603ULL;
	for (int i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
	return (uint32_t)(h >> (64 - SETBITS));
}

static int set_add(int w)
{
	uint32_t i = slot_hash(words[w], wlen[w]);
	for (;; i = (i + 1) & ((1 << SETBITS) - 1)) {
		int32_t o = wset[i] - 1;
		if (o < 0) {
			wset[i] = w + 1;
			return 1;
		}
		if (wlen[o] == wlen[w] && memcmp(words[o], words[w], wlen[w]) == 0)
			return 0;
	}
}

static void build_vocab(void)
{
	int w = 0;
	for (size_t i = 0; i < NCOMMON; i++, w++) {
		wlen[w] = (uint8_t)strlen(common[i]);
		memcpy(words[w], common[i], wlen[w]);
		set_add(w);
	}
	uint64_t s = 0x5EED0F0CAB1ULL; /* fixed: the vocabulary does not depend on SEED */
	while (w < VOCAB) {
		uint64_t r = splitmix64(&s);
		/* rarer words are longer: 2 syllables near the top, up to 5 */
		int nsyl = 2 + (int)(r % 2) + (w > 2000) + (w > 30000 && (r >> 8) % 3 == 0);
		int n = 0;
		for (int k = 0; k < nsyl; k++) {
			const char *sy = syl[(r >> (16 + 9 * k)) % (k ? NSYL : NSYL_FIRST)];
			size_t l = strlen(sy);
			if (n + l > SLOT)
				break;
			memcpy(words[w] + n, sy, l);
			n += (int)l;
		}
		wlen[w] = (uint8_t)n;
		if (set_add(w))
			w++;
		else
			memset(words[w], 0, SLOT);
	}
}

/* Zipf (s = 1) over the VOCAB ranks as Walker's alias table, all integers:
 * weights 2^40/(rank+1) scaled so they sum to exactly VOCAB * 2^32, then
 * each bucket of 2^32 holds its own word below prob and alias above. One
 * draw picks a word in constant time, whatever the vocabulary size. */
static void build_alias(void)
{
	static uint64_t q[VOCAB];
	static uint32_t small[VOCAB], large[VOCAB];
	const uint64_t one = 1ULL << 32;
	uint64_t total = 0, sum = 0;
	for (int i = 0; i < VOCAB; i++)
		total += (1ULL << 40) / (uint64_t)(i + 1);
	for (int i = 0; i < VOCAB; i++) {
		q[i] = (uint64_t)((unsigned __int128)((1ULL << 40) / (uint64_t)(i + 1)) * (VOCAB * one) / total);
		sum += q[i];
	}
	for (int i = 0; sum < VOCAB * one; i++, sum++)
		q[i]++;
	int ns = 0, nl = 0;
	for (int i = 0; i < VOCAB; i++) {
		if (q[i] < one)
			small[ns++] = (uint32_t)i;
		else
			large[nl++] = (uint32_t)i;
	}
	while (ns > 0 && nl > 0) {
		uint32_t s = small[--ns], l = large[nl - 1];
		tab[s].prob = (uint32_t)q[s];
		tab[s].alias = l;
		q[l] -= one - q[s];
		if (q[l] < one) {
			nl--;
			small[ns++] = l;
		}
	}
	/* what is left holds exactly 2^32: always its own word */
	while (nl > 0) {
		uint32_t l = large[--nl];
		tab[l].prob = UINT32_MAX;
		tab[l].alias = l;
	}
	while (ns > 0) { /* only by rounding; cannot happen with exact sums */
		uint32_t s = small[--ns];
		tab[s].prob = UINT32_MAX;
		tab[s].alias = s;
	}
}

static inline uint32_t bucket_of(uint64_t r) { return (uint32_t)(((r >> 32) * VOCAB) >> 32); }

static inline uint32_t word_of(uint64_t r)
{
	uint32_t j = bucket_of(r);
	/* without a branch: which side wins is a coin toss for the predictor */
	uint32_t own = -(uint32_t)((uint32_t)r < tab[j].prob);
	return (j & own) | (tab[j].alias & ~own);
}

/* The tables (2.4 MB) do not stay in a core's cache and a rare word is two
 * dependent cache misses (its bucket, then its letters), which was a third
 * of the time. So the words are drawn ahead: a draw prefetches its bucket and
 * waits AHEAD_R tokens, then its word is resolved and its letters
 * prefetched, and it is used AHEAD_W tokens later, from the cache. */
#define AHEAD_R 16
#define AHEAD_W 8
struct drawer {
	uint64_t rng; /* the wyrand state of the whole stream */
	unsigned at_r, at_w;
	uint64_t ring_r[AHEAD_R];
	uint32_t ring_w[AHEAD_W];
};

static inline uint32_t draw_word(struct drawer *g)
{
	uint32_t w = g->ring_w[g->at_w];
	uint32_t nw = word_of(g->ring_r[g->at_r]);
	__builtin_prefetch(words[nw]);
	g->ring_w[g->at_w] = nw;
	g->at_w = (g->at_w + 1) % AHEAD_W;
	uint64_t r = wyrand(&g->rng);
	__builtin_prefetch(&tab[bucket_of(r)]);
	g->ring_r[g->at_r] = r;
	g->at_r = (g->at_r + 1) % AHEAD_R;
	return w;
}

static void draw_init(struct drawer *g, uint64_t seed)
{
	/* the seed is mixed first so that seeds 1, 2, 3 start far apart */
	g->rng = seed;
	g->rng = splitmix64(&g->rng);
	g->at_r = g->at_w = 0;
	for (int i = 0; i < AHEAD_R; i++)
		g->ring_r[i] = wyrand(&g->rng);
	for (int i = 0; i < AHEAD_W; i++)
		draw_word(g);
}

#define CHUNK (1 << 16)
static char out[CHUNK + 4096]; /* a token is far below the 4096 of slack */

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(1, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			perror("gentext: write");
			exit(1);
		}
		p += k;
		n -= (size_t)k;
	}
}

static uint64_t parse_size(const char *s)
{
	char *e;
	errno = 0;
	uint64_t v = strtoull(s, &e, 10);
	if (errno || e == s || *s == '-')
		return UINT64_MAX;
	switch (*e) {
	case 'k': case 'K': v <<= 10; e++; break;
	case 'm': case 'M': v <<= 20; e++; break;
	case 'g': case 'G': v <<= 30; e++; break;
	}
	return *e ? UINT64_MAX : v;
}

int main(int argc, char **argv)
{
	uint64_t bytes = argc >= 2 ? parse_size(argv[1]) : UINT64_MAX;
	char *e = NULL;
	uint64_t seed = argc >= 3 ? strtoull(argv[2], &e, 10) : 1;
	if (argc < 2 || argc > 3 || bytes == UINT64_MAX || (e && *e)) {
		fprintf(stderr, "usage: gentext BYTES[k|M|G] [SEED]\n");
		return 2;
	}
	build_vocab();
	build_alias();
	struct drawer g; /* a local: its counters can live in registers */
	draw_init(&g, seed);

	char *o = out;
	int col = 0, width = 80; /* the current line's length and wrap width */
	int sentence = 0;        /* words left in the sentence; 0 = starts one */
	int paren = 0;           /* words until a ')' closes, 0 = none open */
	int quoted = 0;
	while (bytes > 0) {
		while (o < out + CHUNK) {
			/* one token: [sep]["][(]word[-word]['s][)][,;:.?!]["] */
			uint64_t d = wyrand(&g.rng);
			/* d's bits decide its looks; no division (a wrap was 40 cycles)
			 *   0-15 sentence length   16-20 quote   21-28 '('  29-30 its span
			 *   31-40 word kind        41-47 punctuation
			 *   48-55 next line width  56-60 paragraph  48-63 a number */
			char *sep = o++, *t = o;
			int cap = 0;
			if (sentence == 0) {
				sentence = 4 + (int)(((d & 0xffff) * 22) >> 16);
				cap = 1;
				if (((d >> 16) & 31) == 0) {
					*o++ = '"';
					quoted = 1;
				}
			}
			if (paren == 0 && ((d >> 21) & 255) < 2 && sentence > 2) {
				*o++ = '(';
				paren = 1 + (int)((d >> 29) & 3);
			}
			unsigned kind = (d >> 31) & 1023;
			if (kind < 4) { /* a number now and then: digits separate words */
				o += sprintf(o, "%u", (unsigned)((((d >> 48) & 0xffff) * 10000) >> 16));
			} else {
				uint32_t w = draw_word(&g);
				char *ws = o;
				memcpy(o, words[w], SLOT);
				o += wlen[w];
				if (kind < 24) /* a proper name */
					cap = 1;
				else if (kind < 28) /* SHOUTED */
					for (char *p = ws; p < o; p++)
						if (*p >= 'a' && *p <= 'z')
							*p -= 32;
				if (cap && *ws >= 'a' && *ws <= 'z')
					*ws -= 32;
				if (kind >= 1000) {
					if (kind < 1010) { /* a compound */
						*o++ = '-';
						w = draw_word(&g);
						memcpy(o, words[w], SLOT);
						o += wlen[w];
					} else if (kind < 1018) {
						*o++ = '\'';
						*o++ = 's';
					}
				}
			}
			if (paren > 0 && --paren == 0)
				*o++ = ')';
			unsigned p = (d >> 41) & 127;
			int end = --sentence == 0;
			if (end) {
				p &= 31;
				*o++ = p < 3 ? '?' : p < 5 ? '!' : '.';
				if (quoted) {
					*o++ = '"';
					quoted = 0;
				}
			} else if (p < 13) {
				if (p < 10)
					*o++ = ',';
				else if (p < 11)
					*o++ = ';';
				else if (p < 12)
					*o++ = ':';
				else {
					*o++ = ' ';
					*o++ = '-';
					*o++ = '-';
				}
			}
			/* the separator is decided once the token's length is known */
			int len = (int)(o - t);
			int nwidth = 60 + (int)((((d >> 48) & 0xff) * 41) >> 8);
			if (col == 0) { /* at a line start: no separator */
				memmove(sep, t, (size_t)len);
				o--;
				col = len;
			} else if (col + 1 + len > width) {
				*sep = '\n';
				col = len;
				width = nwidth;
			} else {
				*sep = ' ';
				col += 1 + len;
			}
			if (end && ((d >> 56) & 31) == 0) { /* a paragraph ends */
				*o++ = '\n';
				*o++ = '\n';
				col = 0;
				width = nwidth;
			}
		}
		size_t n = (size_t)(o - out);
		size_t k = n < CHUNK ? n : CHUNK;
		if (k > bytes)
			k = (size_t)bytes;
		write_all(out, k);
		bytes -= k;
		memmove(out, out + k, n - k);
		o = out + (n - k);
	}
	return 0;
}
