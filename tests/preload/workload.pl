# Preload workload: perl hashes, arrays, string ops and regexes.
#
# Debian's perl is built with usemymalloc=n, so every SV, hash bucket array
# and string buffer comes from the preloaded malloc.  Perl randomises hash
# order per process, so all output goes through sort or order-free sums.
use strict;
use warnings;

my $x = 12345;
sub rnd { $x = ($x * 1103515245 + 12345) % 2147483648; return $x >> 8; }

# 32-bit checksum of a string, built into unpack.
sub ck { return unpack('%32C*', $_[0]); }

# Hashes: grow, delete half, rebuild nested structures.
my $total = 0;
for my $round (1 .. 6) {
    my %h;
    $h{ 'k' . (rnd() % 20000) } .= chr(65 + $round) for 1 .. 20000;
    delete $h{$_} for grep { /[02468]$/ } keys %h;
    my %nested = map { $_ => { len => length($h{$_}), list => [ split //, $h{$_} ] } } keys %h;
    $total += $nested{$_}{len} + scalar @{ $nested{$_}{list} } for keys %nested;
    $total += ck(join ',', sort keys %nested);
}
print "hashes $total\n";

# Arrays: push/splice/sort/reverse with many short-lived elements.
my @a;
push @a, rnd() % 100000 for 1 .. 100000;
my @sorted = sort { $a <=> $b } @a;
splice(@sorted, 1000, 5000, reverse @sorted[0 .. 999]);
my @uniq = do { my %seen; grep { !$seen{$_}++ } @sorted };
print "arrays ", scalar(@uniq), " ", ck(join ' ', @uniq[0 .. 999]), "\n";

# Strings: repeated concatenation (realloc growth), substitution, sprintf.
my $s = '';
$s .= sprintf('%05d-%s;', $_, 'x' x ($_ % 17)) for 1 .. 30000;
(my $t = $s) =~ s/(\d+)-(x*);/length($2) . ":" . reverse($1) . ","/ge;
my @fields = split /,/, $t;
my %lens;
$lens{ (split /:/)[0] }++ for @fields;
print "strings ", length($s), " ", length($t), " ", ck($t), " ",
    join(' ', map { "$_=$lens{$_}" } sort { $a <=> $b } keys %lens), "\n";

# Regex: captures and global matches over a large buffer.
my $text = join ' ', map { ('alpha', 'beta42', 'GAMMA', 'd3lta')[ rnd() % 4 ] . $_ } 1 .. 50000;
my @nums = ($text =~ /(\d+)/g);
my $caps = () = $text =~ /\b([A-Z]+)\d+\b/g;
(my $u = $text) =~ tr/a-z/A-Z/;
print "regex ", scalar(@nums), " $caps ", ck($u), "\n";
