/* Run files: sorted records in lz4-compressed blocks, each with its own
 * checksum, and an end block with the record count so a truncated or
 * damaged file is an error with the file's name, never a crash. */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/kv.h"

#define RUN_MAGIC "MRRUN1\n"  /* 8 bytes with its NUL */
#define RUN_HDR 16
/* Raw block size a reader accepts: one record of the maximum size fits. */
#define RUN_RAW_MAX (MR_KV_RECORD_MAX + 32u)

struct mr_run_writer {
	FILE *f;
	char *path;
	uint8_t *raw, *comp;
	size_t used, cap, ccap;
	uint32_t nrec;     /* records in the current block */
	uint64_t total;
};

struct mr_run_reader {
	FILE *f;
	char *path;
	uint8_t *raw, *comp;
	size_t rcap, ccap;
	size_t pos, len;   /* decoding position in raw */
	uint32_t left;     /* records of the block not yet returned */
	uint64_t total;
	int done;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t mr_run_sum(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ 0x9E3779B97F4A7C15ULL ^ len;
	/* Each step is a bijection of h for a fixed word, so a single changed
	 * word always changes the 64-bit state; only the final fold loses. */
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
		h ^= h >> 32;
		b += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, b, len);
	h = (h ^ w ^ ((uint64_t)len << 56)) * 0xC4CEB9FE1A85EC53ULL;
	h ^= h >> 29;
	return (uint32_t)(h ^ (h >> 32));
}

static uint64_t block_seed(uint32_t raw, uint32_t comp, uint32_t nrec)
{
	return (uint64_t)raw << 32 ^ (uint64_t)comp << 16 ^ nrec;
}

/* ---- writer ---- */

int mr_run_create(mr_run_writer **out, const char *path, node_err *err)
{
	*out = NULL;
	mr_run_writer *w = calloc(1, sizeof *w);
	if (w == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	w->cap = MR_KV_BLOCK;
	w->ccap = (size_t)LZ4_compressBound((int)w->cap);
	w->raw = malloc(w->cap);
	w->comp = malloc(w->ccap);
	w->path = strdup(path);
	if (w->raw == NULL || w->comp == NULL || w->path == NULL) {
		mr_run_abort(w);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	w->f = fopen(path, "wb");
	if (w->f == NULL || fwrite(RUN_MAGIC, 1, 8, w->f) != 8) {
		int e = errno;
		mr_run_abort(w);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: cannot create run file: %s", path,
		                    strerror(e));
	}
	*out = w;
	return 0;
}

static int write_fail(mr_run_writer *w, node_err *err)
{
	return node_err_set(err, NODE_EIO, errno == ENOSPC ? NODE_ERR_DISK_FULL : NODE_ERR_INTERNAL,
	                    "%s: cannot write run file: %s", w->path, strerror(errno));
}

static int flush_block(mr_run_writer *w, node_err *err)
{
	if (w->nrec == 0)
		return 0;
	int c = LZ4_compress_default((const char *)w->raw, (char *)w->comp, (int)w->used, (int)w->ccap);
	if (c <= 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: lz4 compression failed", w->path);
	uint8_t hdr[RUN_HDR];
	put32(hdr, (uint32_t)w->used);
	put32(hdr + 4, (uint32_t)c);
	put32(hdr + 8, w->nrec);
	put32(hdr + 12, mr_run_sum(w->comp, (size_t)c, block_seed((uint32_t)w->used, (uint32_t)c, w->nrec)));
	if (fwrite(hdr, 1, RUN_HDR, w->f) != RUN_HDR || fwrite(w->comp, 1, (size_t)c, w->f) != (size_t)c)
		return write_fail(w, err);
	w->used = 0;
	w->nrec = 0;
	return 0;
}

/* A record bigger than a block gets a block of its own size. */
static int grow_block(mr_run_writer *w, size_t need, node_err *err)
{
	uint8_t *raw = realloc(w->raw, need);
	if (raw == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	w->raw = raw;
	w->cap = need;
	size_t cneed = (size_t)LZ4_compressBound((int)need);
	uint8_t *comp = realloc(w->comp, cneed);
	if (comp == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	w->comp = comp;
	w->ccap = cneed;
	return 0;
}

int mr_run_put(mr_run_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
               node_err *err)
{
	if (klen + vlen > MR_KV_RECORD_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE,
		                    "a record of %zu bytes is larger than the limit of %u", klen + vlen,
		                    MR_KV_RECORD_MAX);
	size_t need = 20 + klen + vlen;
	if (w->used + need > w->cap && flush_block(w, err))
		return err ? err->rc : NODE_EIO;
	if (need > w->cap && grow_block(w, need, err))
		return err ? err->rc : NODE_ENOMEM;
	uint8_t *p = w->raw + w->used;
	p += mr_kv_put_varint(p, klen);
	p += mr_kv_put_varint(p, vlen);
	memcpy(p, key, klen);
	if (vlen)
		memcpy(p + klen, val, vlen);
	w->used = (size_t)(p - w->raw) + klen + vlen;
	w->nrec++;
	w->total++;
	return 0;
}

int mr_run_emit(void *w, const void *key, size_t klen, const void *val, size_t vlen, node_err *err)
{
	return mr_run_put(w, key, klen, val, vlen, err);
}

uint64_t mr_run_records(const mr_run_writer *w)
{
	return w->total;
}

static int write_end(mr_run_writer *w, node_err *err)
{
	uint8_t end[RUN_HDR + 12] = {0};
	for (int i = 0; i < 8; i++)
		end[RUN_HDR + i] = (uint8_t)(w->total >> (8 * i));
	put32(end + RUN_HDR + 8, mr_run_sum(end + RUN_HDR, 8, 0));
	if (fwrite(end, 1, sizeof end, w->f) != sizeof end || fflush(w->f) != 0)
		return write_fail(w, err);
	return 0;
}

static void writer_free(mr_run_writer *w)
{
	free(w->raw);
	free(w->comp);
	free(w->path);
	free(w);
}

int mr_run_close(mr_run_writer *w, node_err *err)
{
	int rc = flush_block(w, err);
	if (rc == 0)
		rc = write_end(w, err);
	if (fclose(w->f) != 0 && rc == 0)
		rc = write_fail(w, err);
	if (rc)
		unlink(w->path);
	writer_free(w);
	return rc;
}

void mr_run_abort(mr_run_writer *w)
{
	if (w == NULL)
		return;
	if (w->f) {
		fclose(w->f);
		unlink(w->path);
	}
	writer_free(w);
}

/* ---- reader ---- */

static int bad(mr_run_reader *r, node_err *err, const char *what)
{
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: damaged run file: %s", r->path, what);
}

int mr_run_open(mr_run_reader **out, const char *path, node_err *err)
{
	*out = NULL;
	mr_run_reader *r = calloc(1, sizeof *r);
	if (r == NULL || (r->path = strdup(path)) == NULL) {
		free(r);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	r->f = fopen(path, "rb");
	if (r->f == NULL) {
		int e = errno;
		mr_run_free(r);
		return node_err_set(err, e == ENOENT ? NODE_ENOTFOUND : NODE_EIO, NODE_ERR_INTERNAL,
		                    "%s: cannot open run file: %s", path, strerror(e));
	}
	char magic[8];
	if (fread(magic, 1, 8, r->f) != 8 || memcmp(magic, RUN_MAGIC, 8) != 0) {
		bad(r, err, "not a run file (bad magic)");
		mr_run_free(r);
		return NODE_EIO;
	}
	*out = r;
	return 0;
}

static int ensure(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	uint8_t *p = realloc(*buf, need);
	if (p == NULL)
		return -1;
	*buf = p;
	*cap = need;
	return 0;
}

static int read_end(mr_run_reader *r, node_err *err)
{
	uint8_t end[12];
	if (fread(end, 1, sizeof end, r->f) != sizeof end)
		return bad(r, err, "truncated end block");
	uint64_t total = 0;
	for (int i = 0; i < 8; i++)
		total |= (uint64_t)end[i] << (8 * i);
	if (get32(end + 8) != mr_run_sum(end, 8, 0))
		return bad(r, err, "end block checksum mismatch");
	if (total != r->total)
		return bad(r, err, "record count does not match the end block");
	if (fgetc(r->f) != EOF)
		return bad(r, err, "bytes after the end block");
	r->done = 1;
	return 0;
}

/* Read, check and decompress the next block; sets done at the end. */
static int read_block(mr_run_reader *r, node_err *err)
{
	uint8_t hdr[RUN_HDR];
	size_t got = fread(hdr, 1, RUN_HDR, r->f);
	if (got != RUN_HDR)
		return bad(r, err, got == 0 && feof(r->f) ? "truncated (no end block)" : "truncated block header");
	uint32_t raw = get32(hdr), comp = get32(hdr + 4), nrec = get32(hdr + 8);
	if (raw == 0)
		return comp == 0 && nrec == 0 ? read_end(r, err) : bad(r, err, "bad end block");
	if (raw > RUN_RAW_MAX || comp > (uint32_t)LZ4_compressBound((int)raw) || nrec == 0 || comp == 0)
		return bad(r, err, "impossible block sizes");
	if (ensure(&r->raw, &r->rcap, raw) || ensure(&r->comp, &r->ccap, comp))
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (fread(r->comp, 1, comp, r->f) != comp)
		return bad(r, err, "truncated block");
	if (get32(hdr + 12) != mr_run_sum(r->comp, comp, block_seed(raw, comp, nrec)))
		return bad(r, err, "block checksum mismatch");
	int n = LZ4_decompress_safe((const char *)r->comp, (char *)r->raw, (int)comp, (int)raw);
	if (n < 0 || (uint32_t)n != raw)
		return bad(r, err, "lz4 data does not decompress");
	r->pos = 0;
	r->len = raw;
	r->left = nrec;
	return 0;
}

static int decode(mr_run_reader *r, mr_kv_rec *rec, node_err *err)
{
	uint64_t kl, vl;
	size_t avail = r->len - r->pos, a = mr_kv_get_varint(r->raw + r->pos, avail, &kl), b = 0;
	if (a)
		b = mr_kv_get_varint(r->raw + r->pos + a, avail - a, &vl);
	if (a == 0 || b == 0 || kl > avail - a - b || vl > avail - a - b - kl)
		return bad(r, err, "record overruns its block");
	rec->key = r->raw + r->pos + a + b;
	rec->klen = (size_t)kl;
	rec->val = rec->key + kl;
	rec->vlen = (size_t)vl;
	r->pos += a + b + kl + vl;
	r->left--;
	r->total++;
	if (r->left == 0 && r->pos != r->len)
		return bad(r, err, "block holds more bytes than its records");
	return 0;
}

int mr_run_next(mr_run_reader *r, mr_kv_rec *rec, node_err *err)
{
	while (r->left == 0) {
		if (r->done)
			return 0;
		if (read_block(r, err))
			return -1;
	}
	return decode(r, rec, err) ? -1 : 1;
}

static int src_next(void *ctx, mr_kv_rec *rec, node_err *err)
{
	return mr_run_next(ctx, rec, err);
}

mr_src mr_run_src(mr_run_reader *r)
{
	return (mr_src){src_next, r};
}

void mr_run_free(mr_run_reader *r)
{
	if (r == NULL)
		return;
	if (r->f)
		fclose(r->f);
	free(r->raw);
	free(r->comp);
	free(r->path);
	free(r);
}
