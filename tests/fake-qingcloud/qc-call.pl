#!/usr/bin/perl
# qc-call.pl - a signed call to a QingCloud IaaS endpoint, for tests: computes
# signature version 1 (HmacSHA256) itself, as the docs and the SDKs do
# (yunify/qingcloud-sdk-go request/signer.go), with perl's core modules only.
#
#   qc-call.pl [--post] [--time-stamp ISO] [--secret-file F] [--bad-signature]
#              URL ACCESS_KEY_ID ACTION [key=value]...
# The secret comes from --secret-file or $QC_SECRET_FILE. Prints the JSON body.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256_base64);
use IO::Socket::INET;
use POSIX qw(strftime);

my ($post, $ts, $bad, $secret_file) = (0, undef, 0, $ENV{QC_SECRET_FILE});
my @rest;
while (@ARGV) {
	my $o = shift @ARGV;
	if ($o !~ /^--/) { push @rest, $o; next }
	if ($o eq '--post') { $post = 1 }
	elsif ($o eq '--time-stamp') { $ts = shift @ARGV }
	elsif ($o eq '--secret-file') { $secret_file = shift @ARGV }
	elsif ($o eq '--bad-signature') { $bad = 1 }
	else { die "qc-call: unknown option '$o'\n" }
}
my ($url, $key_id, $action, @kv) = @rest;
die "usage: qc-call.pl [options] URL ACCESS_KEY_ID ACTION [k=v]...\n" unless defined $action;
open(my $fh, '<', $secret_file) or die "qc-call: cannot read secret file: $!\n";
my $secret = do { local $/; <$fh> };
$secret =~ s/\s+\z//;

my %p = (action => $action, access_key_id => $key_id, signature_method => 'HmacSHA256',
	 signature_version => 1, version => 1,
	 time_stamp => $ts // strftime('%Y-%m-%dT%H:%M:%SZ', gmtime()));
for (@kv) {
	my ($k, $v) = split /=/, $_, 2;
	$p{$k} = $v;
}
sub enc { my $s = shift; $s =~ s/([^A-Za-z0-9\-_.~])/sprintf('%%%02X', ord($1))/ge; $s }
my $q = join('&', map { "$_=" . enc($p{$_}) } sort keys %p);
my ($host, $port, $path) = $url =~ m{^http://([^:/]+):(\d+)(/.*)$} or die "qc-call: bad url\n";
my $method = $post ? 'POST' : 'GET';
my $sig = hmac_sha256_base64("$method\n$path\n$q", $secret);
$sig .= '=' while length($sig) % 4;
$sig = 'AAAA' . substr($sig, 4) if $bad;
$q .= '&signature=' . enc($sig);
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 10)
	or die "qc-call: cannot connect: $!\n";
if ($post) {
	print $s "POST $path HTTP/1.0\r\nHost: $host\r\nContent-Type: application/x-www-form-urlencoded\r\n"
		. "Content-Length: " . length($q) . "\r\n\r\n$q";
} else {
	print $s "GET $path?$q HTTP/1.0\r\nHost: $host\r\n\r\n";
}
my $res = do { local $/; <$s> };
$res =~ s/\A.*?\r\n\r\n//s;
print "$res\n";
